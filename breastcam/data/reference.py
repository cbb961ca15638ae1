"""Reference manifests: every image of a dataset's full public release, from its label files.

The datasets' own label / split files (no pixels) list every image, so breastcam can ship the
manifest a complete download must produce (``data_manifests/<dataset>.csv``) and check a
user's copy against it (:mod:`breastcam.data.against`). ``build_reference(dataset, source)``
reads:

========== ============================================ ===========================================
dataset    source (a folder holding, or the file)       rows
========== ============================================ ===========================================
breakhis   ``dsfold1.txt`` ... ``dsfold5.txt``           7,909 PNGs; ``official_fold1..5`` = train/test
bach       ``microscopy_ground_truth.csv``               400 TIFFs, 4 classes
miniddsm   ``DataWMask.xlsx``                            7,808 JPEGs (the JPEG-8 variant)
cddcesm    ``Radiology-manual-annotations.xlsx``         2,002 JPEGs, both modalities, 3 classes
mias       ``Info.txt``                                  322 PGMs, 3 classes, lesion circles
========== ============================================ ===========================================

Paths are those the loader writes for the folder that holds the release's top folder
(``BreaKHis_v1/...``, ``ICIAR2018_BACH_Challenge/Photos/...``, ``MINI-DDSM-Complete-JPEG-8/...``,
``Low energy images of CDD-CESM/...``, ``all-mias/...``), and the columns are the loader's, plus
the release's own fields the loader does not read (BreakHis ``slide_folder`` and the official
folds; Mini-DDSM masks; CDD-CESM BI-RADS, findings, density, age, tags). ``reference_view``
gives what ``load_manifest`` would return on a complete download with given options (e.g. 40X
only, or CDD-CESM low-energy normal vs abnormal).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pandas as pd

from breastcam.data.loaders import bach, breakhis, cddcesm, mias, miniddsm
from breastcam.data.loaders._common import build_frame, listing
from breastcam.errors import DataError

FOLD_FILES = tuple(f"dsfold{k}.txt" for k in range(1, 6))
BREAKHIS_TOP = "BreaKHis_v1/histology_slides/breast"
BACH_TOP = "ICIAR2018_BACH_Challenge/Photos"
MIAS_TOP = "all-mias"
OFFICIAL_COLUMNS = tuple(f"official_fold{k}" for k in range(1, 6))


def _source(source: str | os.PathLike, names: tuple[str, ...], dataset: str) -> list[Path]:
    """The reference files ``names`` in folder ``source`` (or ``source`` itself, one name)."""
    src = Path(source)
    if src.is_file() and len(names) == 1:
        return [src]
    found = [src / n for n in names]
    absent = [str(p) for p in found if not p.is_file()]
    if absent:
        raise DataError(f"{dataset}: reference file(s) not found: {listing(absent)}; pass the folder "
                        f"holding {', '.join(names)} (e.g. ../shared/data/reference/{dataset})")
    return found


def breakhis_path(name: str, fields: dict) -> str:
    """Where the original BreaKHis_v1 tree keeps the file ``name``."""
    code = str(fields["tumor_type"])
    year = name.split("-")[1]
    folder = f"SOB_{name[4]}_{code}_{year}-{name.split('-')[2]}"
    return (f"{BREAKHIS_TOP}/{fields['class']}/SOB/{fields['subtype']}/{folder}/"
            f"{fields['magnification']}X/{name}")


def read_fold_file(path: str | os.PathLike) -> pd.DataFrame:
    """One ``dsfoldK.txt`` (``filename|magnification|fold|train-or-test``, no header)."""
    df = pd.read_csv(path, sep="|", header=None, dtype=str, keep_default_na=False,
                     names=["name", "magnification", "fold", "group"])
    bad = df.index[~df["group"].isin(["train", "test"]) | df["name"].duplicated()]
    if len(bad):
        raise DataError(f"breakhis: {path}: line(s) {listing([int(i) + 1 for i in bad])} are not "
                        "'name|mag|fold|train-or-test' with each name once")
    return df


def _breakhis(source: str | os.PathLike) -> pd.DataFrame:
    files = _source(source, FOLD_FILES, "breakhis")
    frames = [read_fold_file(p) for p in files]
    folds = [dict(zip(f["name"], f["group"])) for f in frames]
    mags = dict(zip(frames[0]["name"], frames[0]["magnification"]))
    names = list(folds[0])
    for path, fold in zip(files[1:], folds[1:]):
        if set(fold) != set(names):
            raise DataError(f"breakhis: {path} lists other images than {files[0]}")
    rows, bad = [], []
    for name in sorted(names):
        fields = breakhis.parse_name(name)
        if fields is None or str(fields["magnification"]) != mags[name]:
            bad.append(name)
            continue
        path = breakhis_path(name, fields)
        rows.append({
            "path": path, "label": fields["class"], "patient_id": fields["patient_numeric"],
            **{k: fields[k] for k in breakhis.COLUMNS},
            "slide_folder": path.split("/")[-3],
            **{col: fold[name] for col, fold in zip(OFFICIAL_COLUMNS, folds)},
        })
    if bad:
        raise DataError(f"breakhis: {len(bad)} name(s) in {files[0]} do not parse as BreakHis "
                        f"file names (or disagree with their magnification): {listing(bad)}")
    return build_frame(rows, breakhis.CLASSES, "breakhis",
                       (*breakhis.COLUMNS, "slide_folder", *OFFICIAL_COLUMNS))


def _bach(source: str | os.PathLike) -> pd.DataFrame:
    (path,) = _source(source, (bach.GROUND_TRUTH,), "bach")
    truth = bach.read_ground_truth(path)
    rows = [{"path": f"{BACH_TOP}/{label}/{name}", "label": label, "patient_id": ""}
            for name, label in truth.items()]
    return build_frame(rows, bach.CLASSES, "bach")


def _miniddsm(source: str | os.PathLike) -> pd.DataFrame:
    (path,) = _source(source, (miniddsm.METADATA,), "miniddsm")
    meta = miniddsm.read_metadata(path)
    top = miniddsm.VARIANTS["JPEG-8"]
    rows = [{**r, "path": f"{top}/{r['relpath']}", "patient_id": f"{r['label']}/{r['case']}",
             "mask": f"{top}/{r['mask']}" if r["mask"] else "",
             "mask2": f"{top}/{r['mask2']}" if r["mask2"] else ""}
            for r in meta.to_dict("records")]
    return build_frame(rows, miniddsm.CLASSES, "miniddsm", (*miniddsm.COLUMNS, "mask", "mask2"))


CDDCESM_EXTRA = ("age", "density", "birads", "findings", "tags")


def _cddcesm(source: str | os.PathLike) -> pd.DataFrame:
    (path,) = _source(source, (cddcesm.ANNOTATIONS[1],), "cddcesm")
    sheet = cddcesm.read_annotations(path)
    folder = {code: cddcesm.FOLDERS[mod] for mod, code in cddcesm.TYPES.items()}
    rows = []
    for name, group in sheet.groupby("image_name", sort=True):
        first = group.iloc[0]
        kind = first["type"].upper()
        if kind not in folder:
            raise DataError(f"cddcesm: {path}: image {name} has Type {first['type']!r}, not DM or CESM")
        pathology = max(group["pathology"], key=cddcesm._SEVERITY.__getitem__)
        rows.append({
            "path": f"{folder[kind]}/{name}.jpg", "label": pathology,
            "patient_id": first["patient_id"].removesuffix(".0"), "image_name": name,
            "type": kind, "laterality": first["laterality"], "view": first["view"],
            "pathology": pathology,
            **{k: " | ".join(dict.fromkeys(group[k])) for k in CDDCESM_EXTRA},
        })
    df = build_frame(rows, cddcesm.THREE_CLASSES, "cddcesm", (*cddcesm.COLUMNS, *CDDCESM_EXTRA))
    df.attrs["notes"] = list(sheet.attrs.get("notes", []))
    return df


def _mias(source: str | os.PathLike) -> pd.DataFrame:
    (path,) = _source(source, ("Info.txt",), "mias")
    info = mias.parse_info(path)
    rows = [mias.image_row(ref, entries, f"{MIAS_TOP}/{ref}.pgm") for ref, entries in info.items()]
    return build_frame(rows, mias.THREE_CLASSES, "mias", mias.COLUMNS)


BUILDERS: dict[str, Callable[[str | os.PathLike], pd.DataFrame]] = {
    "breakhis": _breakhis, "bach": _bach, "miniddsm": _miniddsm, "cddcesm": _cddcesm,
    "mias": _mias,
}


def build_reference(dataset: str, source: str | os.PathLike) -> pd.DataFrame:
    """The reference manifest of ``dataset`` from its label files in ``source`` (see module doc)."""
    try:
        builder = BUILDERS[dataset]
    except KeyError:
        raise DataError(f"no reference manifest for {dataset!r}; choose one of "
                        f"{sorted(BUILDERS)}") from None
    return builder(source)


def reference_view(df: pd.DataFrame, dataset: str, **options: object) -> pd.DataFrame:
    """The rows and labels ``load_manifest(dataset, complete_download, **options)`` gives.

    Options as the loaders': BreakHis ``magnification``, ``label`` (binary/subtype),
    ``patient_from`` (numeric/slide); CDD-CESM ``classes`` (binary/three/malignant), ``modality``
    (low_energy/subtracted/both); MIAS ``classes`` (three/binary). Others have none.
    """
    options = {k: v for k, v in options.items() if v is not None}
    out, classes = df.copy(), list(df.attrs.get("classes") or [])
    if dataset == "breakhis":
        keep = breakhis._magnifications(options.pop("magnification", None))
        if keep is not None:
            out = out[out["magnification"].astype(int).isin(keep)]
        if options.pop("label", "binary") == "subtype":
            out["label"], classes = out["subtype"], list(breakhis.SUBTYPE_CLASSES)
        if options.pop("patient_from", "numeric") == "slide":
            out["patient_id"] = out["slide"].astype(str)
    elif dataset == "cddcesm":
        modality = options.pop("modality", "low_energy")
        if modality != "both":
            out = out[out["type"] == cddcesm.TYPES[modality]]
        kind = options.pop("classes", "binary")
        if kind == "binary":
            out["label"] = out["label"].where(out["label"] == "normal", "abnormal")
        elif kind == "malignant":
            out = out[out["label"] != "benign"]
        classes = list(cddcesm.classes_for(kind))
    elif dataset == "miniddsm":
        if options.pop("subset", "full") == "paper":
            out = out[out["patient_id"].astype(str).isin(miniddsm.paper_subset_cases())]
    elif dataset == "mias":
        if options.pop("classes", "three") == "binary":
            out["label"] = out["label"].where(out["label"] == "normal", "abnormal")
            classes = list(mias.BINARY_CLASSES)
        else:
            classes = list(mias.THREE_CLASSES)
    if options:
        raise DataError(f"{dataset}: option(s) {sorted(options)} do not apply to its reference "
                        "manifest")
    if not classes:
        classes = sorted(out["label"].unique())
    out["label_index"] = out["label"].map({c: i for i, c in enumerate(classes)}).astype(int)
    out = out.reset_index(drop=True)
    out.attrs.update(dataset=dataset, classes=classes)
    return out
