"""Tiny generated copies of the BACH, Mini-DDSM and CDD-CESM distributions' folder layouts.

No real sample of these datasets can be brought here, so the loaders are tested on trees laid
out exactly like the public downloads (see each loader's docstring), with 8x8 images written by
OpenCV. Each builder returns the root to pass to the loader and what the manifest should say.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def write_image(path: Path, value: int = 128, size: int = 8, channels: int = 3) -> Path:
    """A small image whose pixels are ``value`` (vary it to keep file contents distinct)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size, channels) if channels > 1 else (size, size)
    image = np.full(shape, value % 256, np.uint8)
    image[0, 0] = (value * 7) % 256  # distinct bytes even for equal ``value % 256``
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"OpenCV could not write {path}")
    return path


def make_bach(tmp: Path, per_class: int = 2, ground_truth: dict[str, str] | None = None) -> Path:
    """``tmp/ICIAR2018_BACH_Challenge/Photos/<class>/<prefix>NNN.tif`` (+ the optional CSV).

    ``ground_truth``: name -> label rows written to ``microscopy_ground_truth.csv`` (no header).
    """
    photos = tmp / "ICIAR2018_BACH_Challenge" / "Photos"
    prefixes = {"Normal": "n", "Benign": "b", "InSitu": "is", "Invasive": "iv"}
    for i, (label, prefix) in enumerate(prefixes.items()):
        for k in range(1, per_class + 1):
            write_image(photos / label / f"{prefix}{k:03d}.tif", value=40 * i + k)
    if ground_truth is not None:
        lines = "".join(f"{name},{label}\n" for name, label in ground_truth.items())
        (photos / "microscopy_ground_truth.csv").write_text(lines)
    return tmp


# (class folder, case, scanner letter, views) of the Mini-DDSM fixture.
MINIDDSM_CASES = [
    ("Normal", "0001", "A", ["LEFT_CC", "LEFT_MLO", "RIGHT_CC", "RIGHT_MLO"]),
    ("Normal", "0002", "A", ["LEFT_CC", "RIGHT_CC"]),
    ("Benign", "0029", "C", ["LEFT_CC", "LEFT_MLO"]),
    ("Cancer", "0001", "C", ["RIGHT_CC", "RIGHT_MLO"]),  # same number as a Normal case
]


def make_miniddsm(tmp: Path) -> Path:
    """``tmp/MINI-DDSM-Complete-JPEG-8/<class>/<case>/<L>_<case>_1.<SIDE>_<VIEW>.jpg`` with a
    ``.ics`` file per case, lesion masks for abnormal cases and the metadata beside."""
    data = tmp / "MINI-DDSM-Complete-JPEG-8"
    for i, (label, case, letter, views) in enumerate(MINIDDSM_CASES):
        folder = data / label / case
        for j, view in enumerate(views):
            write_image(folder / f"{letter}_{case}_1.{view}.jpg", value=30 * i + j, channels=1)
            if label != "Normal":
                write_image(folder / f"{letter}_{case}_1.{view}_Mask.jpg", value=255, channels=1)
        (folder / f"{letter}-{case}-1.ics").write_text(f"ics_version 1.0\nfilename {letter}-{case}-1\n")
    (data / "Data-MoreThanTwoMasks").mkdir()
    (data / "Data-MoreThanTwoMasks" / "Data.csv").write_text("fullPath,Status\n")
    return tmp


# Sheet rows of the CDD-CESM fixture: (Image_name, Patient_ID, Side, Type, View, pathology).
CDDCESM_ROWS = [
    ("P1_L_DM_MLO", 1, "L", "DM", "MLO", "Benign"),
    ("P1_L_DM_MLO", 1, "L", "DM", "MLO", "Malignant"),  # two findings: the worse one counts
    ("P1_L_CM_MLO", 1, "L", "CESM", "MLO", "Malignant"),
    ("P2_R_DM_CC", 2, "R", "DM", "CC", "Normal"),
    ("P2_R_CM_CC", 2, "R", "CESM", "CC", "Normal"),
    ("P3_L_DM_CC ", 3, "L", "DM", "CC", "Benign"),  # trailing space, as in the real sheet
    ("P3_L_CM_CC", 3, "L", "CESM", "CC", "Benign"),
    ("P4_R_DM_MLO", 4, "R", "DM", "MLO", "Normal"),
]


def make_cddcesm(tmp: Path, rows=CDDCESM_ROWS, extra_sheet: bool = True) -> Path:
    """``tmp/CDD-CESM/`` with ``Radiology manual annotations.xlsx`` (sheet ``all``) and
    ``Low energy images of CDD-CESM/`` + ``Subtracted images of CDD-CESM/`` JPEGs."""
    root = tmp / "CDD-CESM"
    root.mkdir(parents=True)
    sheet = pd.DataFrame(rows, columns=["Image_name", "Patient_ID", "Side", "Type", "View",
                                        "Pathology Classification/ Follow up"])
    sheet.insert(4, "Age", 50)
    with pd.ExcelWriter(root / "Radiology manual annotations.xlsx", engine="openpyxl") as xl:
        if extra_sheet:
            pd.DataFrame({"note": ["a sheet without the columns comes first"]}).to_excel(
                xl, sheet_name="notes", index=False)
        sheet.to_excel(xl, sheet_name="all", index=False)
    folders = {"DM": "Low energy images of CDD-CESM", "CESM": "Subtracted images of CDD-CESM"}
    for i, (name, kind) in enumerate(dict.fromkeys((r[0].strip(), r[3]) for r in rows)):
        write_image(root / folders[kind] / f"{name}.jpg", value=20 * i + 3)
    return tmp
