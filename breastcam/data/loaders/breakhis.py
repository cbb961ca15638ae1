"""BreakHis v1 (Spanhol et al. 2016): breast histopathology, benign vs malignant or 8 subtypes.

Layout expected (the original distribution)::

    <root>/BreaKHis_v1/histology_slides/breast/<benign|malignant>/SOB/<tumor_type>/
        SOB_<B|M>_<type>_<year>-<slide>/<mag>X/SOB_<B|M>_<type>-<year>-<slide>-<mag>-<seq>.png

``root`` may be the folder holding ``BreaKHis_v1`` or any folder below it (e.g. one
``40X`` folder): every ``SOB_*.png`` under it is listed, found recursively, so flattened copies
work too. Labels come from the **file name** alone, never from the folders:

* class ``B``/``M`` -> ``benign``/``malignant``; type ``A F PT TA`` (benign) or ``DC LC MC PC``
  (malignant), which must agree with the class;
* slide token, e.g. ``22549AB``: the patient is its numeric part (``22549``; slides ``22549AB``
  and ``22549CD`` are one patient), or the whole token with ``patient_from="slide"``;
* magnification ``40 100 200 400``; sequence number.

A ``SOB_*.png`` whose name does not parse is an error listing every such file.
"""

from __future__ import annotations

import os
import re
from typing import Iterable

import pandas as pd

from breastcam.console import progress
from breastcam.errors import DataError
from breastcam.data.loaders._common import as_root, build_frame, choose, is_hidden, listing, relpath

BINARY_CLASSES = ("benign", "malignant")
# Subtype code -> (name, class). Order = the 8-class label order: benign types, then malignant.
SUBTYPES: dict[str, tuple[str, str]] = {
    "A": ("adenosis", "benign"),
    "F": ("fibroadenoma", "benign"),
    "PT": ("phyllodes_tumor", "benign"),
    "TA": ("tubular_adenoma", "benign"),
    "DC": ("ductal_carcinoma", "malignant"),
    "LC": ("lobular_carcinoma", "malignant"),
    "MC": ("mucinous_carcinoma", "malignant"),
    "PC": ("papillary_carcinoma", "malignant"),
}
SUBTYPE_CLASSES = tuple(name for name, _ in SUBTYPES.values())
MAGNIFICATIONS = (40, 100, 200, 400)
CLASSES = BINARY_CLASSES  # default class order (label="binary")

_NAME = re.compile(
    r"^SOB_(?P<cls>[BM])_(?P<type>[A-Z]{1,2})-(?P<year>\d{2})-(?P<slide>(?P<num>\d+)[A-Za-z]*)"
    r"-(?P<mag>\d+)-(?P<seq>\d+)\.png$",
    re.IGNORECASE,
)
COLUMNS = ("magnification", "subtype", "tumor_type", "slide", "seq")


def parse_name(name: str) -> dict[str, object] | None:
    """Fields of a BreakHis file name, or None when the name is not a valid BreakHis name."""
    m = _NAME.match(name)
    if not m:
        return None
    code, cls = m["type"].upper(), m["cls"].upper()
    mag = int(m["mag"])
    if code not in SUBTYPES or mag not in MAGNIFICATIONS:
        return None
    subtype, klass = SUBTYPES[code]
    if klass[0].upper() != cls:
        return None
    return {
        "class": klass,
        "subtype": subtype,
        "tumor_type": code,
        "slide": m["slide"].upper(),
        "patient_numeric": str(int(m["num"])),
        "magnification": mag,
        "seq": int(m["seq"]),
    }


def classes_for(label: str = "binary") -> tuple[str, ...]:
    return SUBTYPE_CLASSES if label == "subtype" else BINARY_CLASSES


def _magnifications(value: int | str | Iterable[int | str] | None) -> set[int] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, (int, str)) else list(value)
    out = set()
    for v in values:
        text = str(v).strip().upper().removesuffix("X")
        if not text.isdigit() or int(text) not in MAGNIFICATIONS:
            raise DataError(
                f"breakhis: magnification {v!r} is not one of {list(MAGNIFICATIONS)} "
                "(give e.g. 40 or [40, 400])"
            )
        out.add(int(text))
    return out


def load(
    root: str | os.PathLike,
    *,
    magnification: int | str | Iterable[int | str] | None = None,
    label: str = "binary",
    patient_from: str = "numeric",
) -> pd.DataFrame:
    """Manifest of the BreakHis PNGs under ``root``.

    Args:
        root: folder holding ``BreaKHis_v1`` or any folder below it.
        magnification: keep only these magnifications (int, ``"40X"``, or a list); default all.
        label: ``"binary"`` (benign, malignant) or ``"subtype"`` (the 8 tumour types, benign
            first: adenosis, fibroadenoma, phyllodes_tumor, tubular_adenoma, ductal, lobular,
            mucinous, papillary carcinoma).
        patient_from: ``"numeric"`` (default: ``22549AB`` -> ``22549``, conservative against
            leakage) or ``"slide"`` (the whole token).

    Columns: path, label, label_index, patient_id, magnification (int), subtype (name),
    tumor_type (code), slide (token), seq (int).
    """
    choose(label, ("binary", "subtype"), "label", "breakhis")
    choose(patient_from, ("numeric", "slide"), "patient_from", "breakhis")
    keep = _magnifications(magnification)
    base = as_root(root, "breakhis")

    rows, unparsed = [], []
    for path in progress(sorted(base.rglob("SOB_*")), desc="manifest", unit="file",
                         min_items=1000):
        if is_hidden(path) or not path.is_file() or path.suffix.lower() != ".png":
            continue
        fields = parse_name(path.name)
        if fields is None:
            unparsed.append(relpath(path, base))
            continue
        if keep is not None and fields["magnification"] not in keep:
            continue
        rows.append({
            "path": relpath(path, base),
            "label": fields["subtype"] if label == "subtype" else fields["class"],
            "patient_id": fields["slide"] if patient_from == "slide" else fields["patient_numeric"],
            **{k: fields[k] for k in COLUMNS},
        })
    if unparsed:
        raise DataError(
            f"breakhis: {len(unparsed)} file(s) under {base} are named SOB_*.png but do not parse "
            f"as SOB_<B|M>_<type>-<year>-<slide>-<mag>-<seq>.png: {listing(unparsed)}; "
            "rename or move them out of the dataset folder"
        )
    if not rows:
        what = f" at magnification {sorted(keep)}" if keep else ""
        raise DataError(
            f"breakhis: no SOB_*.png images{what} found under {base}; pass the folder holding "
            "BreaKHis_v1 (or a folder below it)"
        )
    return build_frame(rows, classes_for(label), "breakhis", COLUMNS)
