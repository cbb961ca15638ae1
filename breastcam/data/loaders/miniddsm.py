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
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from breastcam.console import progress
from breastcam.errors import DataError, MissingFileError
from breastcam.data.loaders._common import as_root, build_frame, choose, is_hidden, listing, relpath

CLASSES = ("Normal", "Benign", "Cancer")
VARIANTS = {"JPEG-8": "MINI-DDSM-Complete-JPEG-8", "PNG-16": "MINI-DDSM-Complete-PNG-16"}
EXTENSIONS = (".jpg", ".jpeg", ".png")
COLUMNS = ("case", "laterality", "view")
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


def load(root: str | os.PathLike, *, variant: str | None = None) -> pd.DataFrame:
    """Manifest of the Mini-DDSM mammograms (see module doc for the layout).

    Args:
        root: folder holding ``MINI-DDSM-Complete-JPEG-8`` (or the variant folder itself).
        variant: ``"JPEG-8"`` or ``"PNG-16"`` to pick one when both are present.

    Columns: path, label, label_index, patient_id (``<Class>/<case>``), case, laterality, view.
    """
    if variant is not None:
        choose(variant, tuple(VARIANTS), "variant", "miniddsm")
    base = as_root(root, "miniddsm")
    data = _data_dir(base, variant)
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
            })
    if loose:
        raise DataError(
            f"miniddsm: image(s) directly in a class folder of {data}, outside any case folder, so "
            f"without a patient: {listing(loose)}; move each into its case folder"
        )
    if not rows:
        raise DataError(f"miniddsm: no images in the class folders of {data}")
    return build_frame(rows, CLASSES, "miniddsm", COLUMNS)
