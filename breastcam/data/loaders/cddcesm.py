"""CDD-CESM (Khaled et al. 2022, TCIA): contrast-enhanced spectral mammography, 326 patients.

Layout expected (the TCIA distribution)::

    <root>/Radiology manual annotations.xlsx
    <root>/Low energy images of CDD-CESM/P1_L_DM_MLO.jpg ...   (Type DM: FFDM-like)
    <root>/Subtracted images of CDD-CESM/P1_L_CM_MLO.jpg ...   (Type CESM)

``root`` may also be a folder up to three levels above these (e.g. the folder holding
``PKG - CDD-CESM/CDD-CESM``); ``annotations`` gives the spreadsheet explicitly. The sheet used is
``all`` when present, else the first sheet with the columns ``Image_name`` (e.g.
``P1_L_DM_MLO``, no extension, sometimes with trailing spaces), ``Patient_ID``, ``Type`` (``DM``
= low energy, ``CESM`` = subtracted) and ``Pathology Classification/ Follow up``
(``Normal``/``Benign``/``Malignant``). An image may have several rows (one per finding): its
label is the most severe one.

By default only low-energy images are listed (``modality="low_energy"``) and the label is
``normal`` vs ``abnormal`` (benign + malignant); ``classes="three"`` keeps
normal/benign/malignant; ``classes="malignant"`` is the Modified-ResNet50 study's own task
(paper 004 section 3.3: 2,046 normal = 6 x 341 and 1,986 tumour = 6 x 331 images after its 6x
augmentation, and the release has 331 malignant low-energy images: benign images are left out). Images on disk without a sheet row are an
error; sheet rows whose image is absent are left out with a warning naming them.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pandas as pd

from breastcam.errors import DataError, MissingFileError
from breastcam.data.loaders._common import as_root, build_frame, choose, is_hidden, listing, relpath

BINARY_CLASSES = ("normal", "abnormal")
THREE_CLASSES = ("normal", "benign", "malignant")
MALIGNANT_CLASSES = ("normal", "malignant")  # classes="malignant": benign images left out
CLASS_CHOICES = ("binary", "three", "malignant")
CLASSES = BINARY_CLASSES  # default class order (classes="binary")
ANNOTATIONS = ("Radiology manual annotations.xlsx", "Radiology-manual-annotations.xlsx")
FOLDERS = {"low_energy": "Low energy images of CDD-CESM", "subtracted": "Subtracted images of CDD-CESM"}
TYPES = {"low_energy": "DM", "subtracted": "CESM"}
EXTENSIONS = (".jpg", ".jpeg", ".png")
COLUMNS = ("image_name", "type", "laterality", "view", "pathology")
_SEVERITY = {"normal": 0, "benign": 1, "malignant": 2}
# Spreadsheet column -> our name; matched ignoring case, spaces and punctuation.
_SHEET_COLUMNS = {
    "imagename": "image_name",
    "patientid": "patient_id",
    "type": "type",
    "side": "laterality",
    "view": "view",
    "pathologyclassificationfollowup": "pathology",
    # kept for the reference manifest (breastcam.data.reference); the loader does not need them
    "age": "age",
    "breastdensityacr": "density",
    "birads": "birads",
    "findings": "findings",
    "tags": "tags",
}
_REQUIRED = ("image_name", "patient_id", "type", "pathology")


def classes_for(classes: str = "binary") -> tuple[str, ...]:
    return {"three": THREE_CLASSES, "malignant": MALIGNANT_CLASSES}.get(classes, BINARY_CLASSES)


def _key(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _find(base: Path, names: tuple[str, ...], want_dir: bool, depth: int = 3) -> Path | None:
    level = [base]
    for _ in range(depth + 1):
        for folder in level:
            for name in names:
                hit = folder / name
                if (hit.is_dir() if want_dir else hit.is_file()):
                    return hit
        level = sorted(p for f in level for p in f.iterdir() if p.is_dir() and not is_hidden(p))
    return None


def read_annotations(path: str | os.PathLike) -> pd.DataFrame:
    """The annotation sheet with columns renamed to image_name, patient_id, type, laterality,
    view, pathology (lower case) (+ age, density, birads, findings, tags where present), cells
    stripped of blanks; one row per finding.

    The real sheet has names with a trailing space and exact duplicate rows: names are matched
    stripped and duplicates counted once, and both are reported (a warning each, and the list
    ``sheet.attrs["notes"]``), never silently."""
    path = Path(path)
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="openpyxl")
    except Exception as err:  # openpyxl raises many types for a damaged or non-xlsx file
        raise DataError(f"cddcesm: cannot read the annotation spreadsheet {path}: {err}") from err
    names = sorted(sheets, key=lambda n: n.strip().lower() != "all")  # "all" first, else file order
    for name in names:
        sheet = sheets[name]
        renamed = {c: _SHEET_COLUMNS[_key(c)] for c in sheet.columns if _key(c) in _SHEET_COLUMNS}
        if all(c in renamed.values() for c in _REQUIRED):
            sheet = sheet.rename(columns=renamed)[list(dict.fromkeys(renamed.values()))]
            sheet = sheet.fillna("")
            padded = sorted(n for n in sheet["image_name"] if n != n.strip())
            sheet = sheet.apply(lambda col: col.str.strip())
            sheet = sheet[sheet["image_name"] != ""]
            twice = sheet["image_name"][sheet.duplicated()].tolist()
            sheet = sheet.drop_duplicates().copy()
            notes = ([f"{len(padded)} image name(s) with surrounding spaces, matched without "
                      f"them: {listing(repr(n) for n in padded)}"] if padded else []) + (
                [f"{len(twice)} exact duplicate row(s), counted once: {listing(twice)}"]
                if twice else [])
            for note in notes:
                warnings.warn(f"cddcesm: {path.name}, sheet {name!r}: {note}", stacklevel=2)
            sheet.attrs["notes"] = notes
            sheet["pathology"] = sheet["pathology"].str.lower()
            bad = sorted(set(sheet["pathology"]) - set(_SEVERITY))
            if bad:
                raise DataError(f"cddcesm: {path}, sheet {name!r}: unknown pathology value(s) "
                                 f"{bad}; expected Normal, Benign or Malignant")
            return sheet.reset_index(drop=True)
    raise DataError(
        f"cddcesm: no sheet of {path} has the columns Image_name, Patient_ID, Type and "
        f"'Pathology Classification/ Follow up' (sheets: {list(sheets)})"
    )


def load(
    root: str | os.PathLike,
    *,
    classes: str = "binary",
    modality: str = "low_energy",
    annotations: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Manifest of the CDD-CESM images (see module doc for the layout).

    Args:
        root: folder holding the spreadsheet and the image folders (or up to 3 levels above).
        classes: ``"binary"`` (normal, abnormal; default), ``"three"`` (normal, benign,
            malignant) or ``"malignant"`` (normal, malignant; benign images left out: paper 004).
        modality: ``"low_energy"`` (default), ``"subtracted"`` or ``"both"``.
        annotations: path of the annotation spreadsheet, if not found under ``root``.

    Columns: path, label, label_index, patient_id, image_name, type (DM/CESM), laterality (L/R),
    view (CC/MLO), pathology (normal/benign/malignant, the most severe row).
    """
    choose(classes, CLASS_CHOICES, "classes", "cddcesm")
    choose(modality, ("low_energy", "subtracted", "both"), "modality", "cddcesm")
    base = as_root(root, "cddcesm")
    sheet_path = Path(annotations) if annotations else _find(base, ANNOTATIONS, want_dir=False)
    if sheet_path is None or not sheet_path.is_file():
        raise MissingFileError(
            f"cddcesm: annotation spreadsheet {ANNOTATIONS[0]!r} not found "
            f"{'at ' + str(sheet_path) if annotations else 'under ' + str(base)}; "
            "pass its path with annotations=... (CLI: --annotations)"
        )
    sheet = read_annotations(sheet_path)
    modalities = ("low_energy", "subtracted") if modality == "both" else (modality,)

    rows, unlisted, absent = [], [], []
    for mod in modalities:
        folder = _find(base, (FOLDERS[mod],), want_dir=True)
        if folder is None:
            raise MissingFileError(f"cddcesm: folder {FOLDERS[mod]!r} not found under {base}")
        part = sheet[sheet["type"].str.upper() == TYPES[mod]]
        by_image = {name.lower(): group for name, group in part.groupby("image_name")}
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and not is_hidden(p) and p.suffix.lower() in EXTENSIONS)
        seen = set()
        for path in files:
            group = by_image.get(path.stem.lower())
            if group is None:
                unlisted.append(relpath(path, base))
                continue
            seen.add(path.stem.lower())
            pathology = max(group["pathology"], key=_SEVERITY.__getitem__)
            if classes == "malignant" and pathology == "benign":
                continue  # not in the two classes (listed, so not an unlisted image)
            first = group.iloc[0]
            rows.append({
                "path": relpath(path, base),
                "label": pathology if classes != "binary" or pathology == "normal" else "abnormal",
                "patient_id": first["patient_id"].removesuffix(".0"),
                "image_name": first["image_name"],
                "type": TYPES[mod],
                "laterality": first.get("laterality", ""),
                "view": first.get("view", ""),
                "pathology": pathology,
            })
        absent += sorted(group["image_name"].iloc[0] for key, group in by_image.items()
                         if key not in seen)
    if unlisted:
        raise DataError(
            f"cddcesm: image(s) with no row in {sheet_path}: {listing(unlisted)}; add their rows "
            "or move them out of the dataset folder"
        )
    if absent:
        warnings.warn(
            f"cddcesm: {len(absent)} image(s) named in {sheet_path.name} are not on disk and are "
            f"left out: {listing(absent)}",
            stacklevel=2,
        )
    if not rows:
        raise DataError(f"cddcesm: no {' or '.join(FOLDERS[m] for m in modalities)} images "
                         f"under {base}")
    return build_frame(rows, classes_for(classes), "cddcesm", COLUMNS)
