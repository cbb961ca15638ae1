"""Re-derive the committed reference manifests (and the paper protocols' splits) of data_manifests/.

    python data_manifests/build.py [--reference ../shared/data/reference] [--mias ../shared/data/mias/all-mias]

Reads only the datasets' own label files (no images) through ``breastcam.data.reference`` and
writes ``data_manifests/<dataset>.csv`` and ``docs/BREAKHIS_FOLDS.md`` (the official folds'
leak table) and ``data_manifests/splits/<dataset>.csv.gz`` (every experiment's splits on the
complete release, ``breastcam.reproduce.committed``). Tests check that the committed files equal what this makes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = {"breakhis": "breakhis", "bach": "bach", "miniddsm": "mini-ddsm", "cddcesm": "cdd-cesm"}


def main(argv: list[str] | None = None) -> int:
    from breastcam.data import write_manifest
    from breastcam.data.official import leak_markdown
    from breastcam.data.manifest import write_bytes_atomic
    from breastcam.reproduce.committed import build_splits, splits_bytes
    from breastcam.data.reference import build_reference

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", default=str(HERE.parent.parent / "shared" / "data" / "reference"),
                   help="folder holding breakhis/, bach/, mini-ddsm/, cdd-cesm/ label files")
    p.add_argument("--mias", default=str(HERE.parent.parent / "shared" / "data" / "mias" / "all-mias"),
                   help="folder holding mini-MIAS Info.txt")
    p.add_argument("--out", default=str(HERE), help="output folder (default: data_manifests/)")
    p.add_argument("--no-splits", action="store_true", help="only the reference manifests")
    args = p.parse_args(argv)

    sources = {name: Path(args.reference) / folder for name, folder in SOURCES.items()}
    sources["mias"] = Path(args.mias)
    for dataset, source in sources.items():
        df = build_reference(dataset, source)
        digest = write_manifest(df, Path(args.out) / f"{dataset}.csv")
        print(f"{dataset}.csv: {len(df)} images, sha256 {digest[:16]}")
        for note in df.attrs.get("notes", []):
            print(f"  note: {note}")
        if dataset == "breakhis":
            doc = HERE.parent / "docs" / "BREAKHIS_FOLDS.md"
            doc.write_text(leak_markdown(df), encoding="utf-8")
            print(f"{doc.relative_to(HERE.parent)}: the official folds' leak table")
        if dataset == "miniddsm":  # paper 001's 2,000 images: a seeded draw of whole cases
            from breastcam.data.loaders.miniddsm import PAPER_SUBSET_FILE, draw_paper_subset

            subset = draw_paper_subset(df, seed=0)
            subset.to_csv(Path(args.out) / PAPER_SUBSET_FILE, index=False, lineterminator="\n")
            print(f"  {PAPER_SUBSET_FILE}: {len(subset)} cases, "
                  + ", ".join(f"{k} {v}" for k, v in subset.groupby("label", sort=False)["images"].sum().items()))
        if not args.no_splits:
            splits = build_splits(dataset, df)
            write_bytes_atomic(splits_bytes(splits), Path(args.out) / "splits" / f"{dataset}.csv.gz")
            print(f"  splits/{dataset}.csv.gz: {splits.shape[1] - 1} split(s) of the experiments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
