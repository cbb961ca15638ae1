"""BACH / ICIAR 2018 (Aresta et al. 2019): 400 H&E microscopy TIFFs, 4 classes, no patient ids.

Layout expected (the challenge's ``ICIAR2018_BACH_Challenge.zip``)::

    <root>/ICIAR2018_BACH_Challenge/Photos/Normal/n001.tif ...
                                          /Benign/b001.tif ...
                                          /InSitu/is001.tif ...
                                          /Invasive/iv001.tif ...
                                          /microscopy_ground_truth.csv   (optional)

``root`` may be the folder holding ``ICIAR2018_BACH_Challenge``, that folder itself, or
``Photos``. Labels come from the class folder; when ``microscopy_ground_truth.csv`` (no header,
rows ``name,label`` such as ``b001.tif,Benign``) is present it takes precedence, and every image
must have a row and every row an image. Only ``.tif``/``.tiff`` files are images here; other files
in the class folders (thumbnails, notes) are not listed. ``patient_id`` is empty: BACH publishes
none, so only image-level splits are possible.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from breastcam.errors import DataError, MissingFileError
from breastcam.data.loaders._common import as_root, build_frame, is_hidden, listing, relpath

CLASSES = ("Normal", "Benign", "InSitu", "Invasive")
GROUND_TRUTH = "microscopy_ground_truth.csv"
EXTENSIONS = (".tif", ".tiff")


def _photos_dir(base: Path) -> Path:
    for candidate in (base, base / "Photos", base / "ICIAR2018_BACH_Challenge" / "Photos"):
        if any((candidate / c).is_dir() for c in CLASSES):
            return candidate
    raise MissingFileError(
        f"bach: no class folders {list(CLASSES)} in {base}, {base / 'Photos'} or "
        f"{base / 'ICIAR2018_BACH_Challenge' / 'Photos'}; pass the folder holding "
        "ICIAR2018_BACH_Challenge (or its Photos folder)"
    )


def read_ground_truth(path: str | os.PathLike) -> dict[str, str]:
    """``name,label`` rows (no header; LF or CRLF, as the release's file) -> ``{name: label}``."""
    labels: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise DataError(f"bach: {path}, line {number}: expected 'name,label', got {row}")
            name, label = row[0].strip(), row[1].strip()
            if label not in CLASSES:
                raise DataError(f"bach: {path}, line {number}: label {label!r} is not one of "
                                 f"{list(CLASSES)}")
            if name in labels:
                raise DataError(f"bach: {path}, line {number}: {name} is listed a second time")
            labels[name] = label
    return labels


def load(root: str | os.PathLike, *, ground_truth: str | os.PathLike | None = None) -> pd.DataFrame:
    """Manifest of the BACH microscopy images (see module doc for the layout).

    Args:
        root: folder holding ``ICIAR2018_BACH_Challenge``, that folder, or ``Photos``.
        ground_truth: a ``name,label`` CSV to use instead of
            ``Photos/microscopy_ground_truth.csv`` (which is used when present).

    Columns: path, label, label_index, patient_id (empty).
    """
    base = as_root(root, "bach")
    photos = _photos_dir(base)
    images = sorted(
        p for c in CLASSES if (photos / c).is_dir() for p in (photos / c).rglob("*")
        if p.is_file() and not is_hidden(p) and p.suffix.lower() in EXTENSIONS
    )
    if not images:
        raise DataError(f"bach: no .tif images in the class folders of {photos}")
    gt_path = Path(ground_truth) if ground_truth else photos / GROUND_TRUTH
    if ground_truth and not gt_path.is_file():
        raise MissingFileError(f"bach: ground-truth CSV {gt_path} not found")
    truth = read_ground_truth(gt_path) if gt_path.is_file() else None

    rows = []
    for path in images:
        folder_label = path.relative_to(photos).parts[0]
        label = truth.get(path.name, None) if truth is not None else folder_label
        rows.append({"path": relpath(path, base), "label": label, "patient_id": ""})
    if truth is not None:
        unlisted = [r["path"] for r in rows if r["label"] is None]
        on_disk = {p.name for p in images}
        absent = sorted(set(truth) - on_disk)
        if unlisted or absent:
            parts = []
            if unlisted:
                parts.append(f"image(s) without a row: {listing(unlisted)}")
            if absent:
                parts.append(f"row(s) without an image: {listing(absent)}")
            raise DataError(f"bach: {gt_path} does not match the images in {photos} — "
                             + "; ".join(parts) + " — fix the CSV or the folders")
    return build_frame(rows, CLASSES, "bach")
