"""Mini-DDSM (Lekamlage et al. 2020; Kaggle "miniddsm2"): DDSM mammograms, Normal/Benign/Cancer.

Layout expected (the Kaggle distribution)::

    <root>/MINI-DDSM-Complete-JPEG-8/Normal/<case>/A_0001_1.LEFT_CC.jpg
                                           /<case>/A_0001_1.LEFT_MLO.jpg ... (+ <case>.ics)
                                    /Benign/<case>/C_0029_1.LEFT_CC.jpg
                                           /<case>/C_0029_1.LEFT_CC_Mask.jpg   (lesion masks)
                                    /Cancer/<case>/...
                                    /DataWMask.xlsx, Data-MoreThanTwoMasks/ ... (metadata)

``root`` may be the folder holding ``MINI-DDSM-Complete-JPEG-8`` (or ``MINI-DDSM-Complete-PNG-16``,
the 16-bit PNG variant; JPEG-8 is preferred when both are there, choose with ``variant``) or the
variant folder itself. The label is the class folder; the case folder (a DDSM case = one
patient's exam) is the patient. DDSM numbers cases per volume type, so the same number can occur
under two classes for two different women: ``patient_id`` is ``<Class>/<case>`` (e.g.
``Benign/0029``). Lesion-mask images (a name containing ``mask``) and non-image files
(``.ics``) are not listed; neither is anything outside the three class folders (the metadata).
Columns added: ``case``, ``laterality`` (LEFT/RIGHT) and ``view`` (CC/MLO) from the file name.

``DataWMask.xlsx`` (the release's metadata, sheet ``Data``: ``fullPath`` with backslashes,
``fileName, View, Side, Status, Tumour_Contour, Tumour_Contour2, Age, Density``), when it sits in
the variant folder (or is given as ``metadata``), adds ``age`` and ``density`` and is checked
against the folders: an image whose row gives another class, or that has no row, is an error;
rows whose image is absent are left out with a warning (a partial copy is fine).

``subset="paper"`` keeps paper 001's 2,000 images (Table V: 500 Normal / 700 Benign / 800 Cancer):
a seeded draw of whole cases (every case holds 4 images, so 125 / 175 / 200 cases; one woman's
views stay together) from the full release, committed as ``data_manifests/miniddsm_paper_subset.csv``
(:func:`draw_paper_subset` makes it; ``python data_manifests/build.py`` rewrites it).
``subset="full"`` (default) lists every image.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pandas as pd

from breastcam.console import progress
from breastcam.errors import DataError, MissingFileError
from breastcam.data.loaders._common import as_root, build_frame, choose, is_hidden, listing, relpath

CLASSES = ("Normal", "Benign", "Cancer")
VARIANTS = {"JPEG-8": "MINI-DDSM-Complete-JPEG-8", "PNG-16": "MINI-DDSM-Complete-PNG-16"}
EXTENSIONS = (".jpg", ".jpeg", ".png")
COLUMNS = ("case", "laterality", "view", "age", "density")
METADATA = "DataWMask.xlsx"
_VIEW = re.compile(r"\.(?P<side>LEFT|RIGHT)_(?P<view>CC|MLO)$", re.IGNORECASE)


def _data_dir(base: Path, variant: str | None) -> Path:
    names = [VARIANTS[variant]] if variant else list(VARIANTS.values())
    for candidate in [base / n for n in names] + [base]:
        if any((candidate / c).is_dir() for c in CLASSES):
            return candidate
    raise MissingFileError(
        f"miniddsm: no class folders {list(CLASSES)} in {base} or in {', '.join(names)} below it; "
        "pass the folder holding MINI-DDSM-Complete-JPEG-8"
    )


def _mask_path(value: object) -> str:
    text = "" if pd.isna(value) else str(value).strip()
    return "" if text in ("", "-") else text.replace("\\", "/")


def read_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """``DataWMask.xlsx`` -> one row per image: ``relpath`` (below the variant folder, POSIX),
    ``label`` (Status), ``case``, ``laterality``, ``view``, ``age`` (blank where the sheet has
    none), ``density``, ``mask``, ``mask2`` (lesion-mask paths, blank for none)."""
    path = Path(path)
    try:
        sheet = pd.read_excel(path, sheet_name=0, dtype=str, engine="openpyxl")
    except Exception as err:  # openpyxl raises many types for a damaged or non-xlsx file
        raise DataError(f"miniddsm: cannot read the metadata spreadsheet {path}: {err}") from err
    need = ["fullPath", "View", "Side", "Status", "Age", "Density"]
    missing = [c for c in need if c not in sheet.columns]
    if missing:
        raise DataError(f"miniddsm: {path} lacks column(s) {missing} (has {list(sheet.columns)}); "
                         "expected the release's DataWMask.xlsx")
    sheet = sheet.fillna("")
    rel = sheet["fullPath"].str.strip().str.replace("\\", "/", regex=False)
    parts = rel.str.split("/")
    bad = sheet.index[(parts.str.len() != 3) | ~sheet["Status"].isin(CLASSES)
                      | (parts.str[0] != sheet["Status"])]
    if len(bad):
        raise DataError(f"miniddsm: {path}: row(s) {listing([int(i) + 2 for i in bad])} are not "
                         "'<Status>\\<case>\\<file>' with Status one of " + str(list(CLASSES)))
    age = pd.to_numeric(sheet["Age"], errors="coerce")
    out = pd.DataFrame({
        "relpath": rel, "label": sheet["Status"], "case": parts.str[1],
        "laterality": sheet["Side"].str.strip().str.upper(),
        "view": sheet["View"].str.strip().str.upper(),
        "age": [("" if pd.isna(a) else str(int(a))) for a in age],
        "density": sheet["Density"].str.strip(),
        "mask": [_mask_path(v) for v in sheet.get("Tumour_Contour", "")],
        "mask2": [_mask_path(v) for v in sheet.get("Tumour_Contour2", "")],
    })
    dup = out["relpath"][out["relpath"].duplicated()]
    if len(dup):
        raise DataError(f"miniddsm: {path}: image(s) listed twice: {listing(dup)}")
    return out


#: Paper 001 Table V: the Mini-DDSM images the paper used, per class (2,000 in all).
PAPER_SUBSET = {"Normal": 500, "Benign": 700, "Cancer": 800}
PAPER_SUBSET_FILE = "miniddsm_paper_subset.csv"
SUBSETS = ("full", "paper")


def draw_paper_subset(reference: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The cases of paper 001's 2,000 images: per class, ``PAPER_SUBSET[c] / 4`` cases drawn
    without replacement (NumPy ``default_rng(seed)``, cases sorted first) from the full release's
    reference manifest. Columns: ``patient_id``, ``label``, ``images``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for label, wanted in PAPER_SUBSET.items():
        sizes = reference[reference["label"] == label].groupby("patient_id").size().sort_index()
        if set(sizes) != {4}:
            raise DataError(f"miniddsm: expected 4 images per {label} case, got sizes {sorted(set(sizes))}")
        picked = np.sort(rng.choice(sizes.index.to_numpy(), wanted // 4, replace=False))
        out += [{"patient_id": str(p), "label": label, "images": 4} for p in picked]
    return pd.DataFrame(out)


def paper_subset_cases() -> set[str]:
    """The committed cases of ``subset="paper"`` (``data_manifests/miniddsm_paper_subset.csv``)."""
    from breastcam.resources import data_manifests_dir

    path = data_manifests_dir() / PAPER_SUBSET_FILE
    if not path.is_file():
        raise MissingFileError(f"miniddsm: {path} not found; run python data_manifests/build.py")
    return set(pd.read_csv(path, dtype=str)["patient_id"])


def load(root: str | os.PathLike, *, variant: str | None = None,
         metadata: str | os.PathLike | None = None, subset: str = "full") -> pd.DataFrame:
    """Manifest of the Mini-DDSM mammograms (see module doc for the layout).

    Args:
        root: folder holding ``MINI-DDSM-Complete-JPEG-8`` (or the variant folder itself).
        variant: ``"JPEG-8"`` or ``"PNG-16"`` to pick one when both are present.
        metadata: ``DataWMask.xlsx`` to check the images against (default: the one in the
            variant folder, when present).
        subset: ``"full"`` (every image, default) or ``"paper"`` (paper 001's 2,000: see above).

    Columns: path, label, label_index, patient_id (``<Class>/<case>``), case, laterality, view,
    age, density (blank without metadata).
    """
    if variant is not None:
        choose(variant, tuple(VARIANTS), "variant", "miniddsm")
    choose(subset, SUBSETS, "subset", "miniddsm")
    base = as_root(root, "miniddsm")
    data = _data_dir(base, variant)
    meta_path = Path(metadata) if metadata else data / METADATA
    if metadata and not meta_path.is_file():
        raise MissingFileError(f"miniddsm: metadata spreadsheet {meta_path} not found")
    meta = read_metadata(meta_path).set_index("relpath") if meta_path.is_file() else None
    rows, loose = [], []
    for label in CLASSES:
        folder = data / label
        if not folder.is_dir():
            continue
        for path in progress(sorted(folder.rglob("*")), desc=f"manifest {folder.name}",
                             unit="file", min_items=1000):
            if (not path.is_file() or is_hidden(path) or path.suffix.lower() not in EXTENSIONS
                    or "mask" in path.name.lower()):
                continue
            parts = path.relative_to(folder).parts
            if len(parts) < 2:
                loose.append(relpath(path, base))
                continue
            view = _VIEW.search(path.stem)
            rows.append({
                "path": relpath(path, base),
                "label": label,
                "patient_id": f"{label}/{parts[0]}",
                "case": parts[0],
                "laterality": view["side"].upper() if view else "",
                "view": view["view"].upper() if view else "",
                "age": "", "density": "",
                "key": path.relative_to(data).as_posix(),  # the metadata's path; not a column
            })
    if loose:
        raise DataError(
            f"miniddsm: image(s) directly in a class folder of {data}, outside any case folder, so "
            f"without a patient: {listing(loose)}; move each into its case folder"
        )
    if not rows:
        raise DataError(f"miniddsm: no images in the class folders of {data}")
    if meta is not None:
        _check_metadata(rows, meta, data, meta_path)
    if subset == "paper":
        cases = paper_subset_cases()
        rows = [r for r in rows if r["patient_id"] in cases]
        if not rows:
            raise DataError(f"miniddsm: none of paper 001's 500 cases is under {data}")
    return build_frame(rows, CLASSES, "miniddsm", COLUMNS)


def _check_metadata(rows: list[dict], meta: pd.DataFrame, data: Path, meta_path: Path) -> None:
    """Fill age/density from the metadata; every image needs a row of its own class."""
    unlisted, clash, seen = [], [], set()
    entries = meta.to_dict("index")
    for row in rows:
        key = row["key"]
        if key not in entries:
            unlisted.append(row["path"])
            continue
        entry = entries[key]
        seen.add(key)
        if entry["label"] != row["label"]:
            clash.append(f"{row['path']} (sheet: {entry['label']})")
        row["age"], row["density"] = entry["age"], entry["density"]
    if unlisted or clash:
        parts = ([f"image(s) without a row: {listing(unlisted)}"] if unlisted else []) + (
            [f"image(s) in another class folder than their row says: {listing(clash)}"] if clash else [])
        raise DataError(f"miniddsm: {meta_path} does not match the images in {data} — "
                         + "; ".join(parts) + " — fix the folders or pass another metadata file")
    absent = sorted(set(entries) - seen)
    if absent:
        warnings.warn(f"miniddsm: {len(absent)} image(s) listed in {meta_path.name} are not on disk "
                      f"and are left out: {listing(absent)}", stacklevel=3)
