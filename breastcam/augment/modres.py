"""Paper C's (Modified ResNet50) augmentation: offline copies of the training split, written once.

Paper C adds a horizontally flipped, a vertically flipped, a rotated (+-20 degrees, section 3.3),
a shifted (Algorithm 1) and a sheared copy of every training image (6x), and did so before
splitting, which leaks copies of test images into training. :func:`expand_modres` works on a manifest that is already split and copies only rows
with ``split == "train"``; validation and test rows are never touched.

Each copy is a PNG under ``out_dir`` (same sub-folders as the original's relative path, the kind
appended to the name: ``.../mdb001__hflip.png``), bit depth and channels kept. New manifest rows
copy every column of their original (label, patient, magnification, fold ...), and set:

- ``path``: the copy's **absolute** POSIX path. ``make_dataset(df, root)`` joins ``root`` with
  relative paths only, so originals (relative to the dataset root) and copies (anywhere) live in
  one manifest; keep ``out_dir`` where it is, or rewrite the column if you move it.
- ``split = "train"``, ``augmented_from`` = the original's ``path``, ``augmentation`` = the kind.
Original rows get empty ``augmented_from`` and ``augmentation``.

Parameters the paper leaves open: shifts up to 10 % of each side; the paper gives the shear
angle, uniform in [-16, 16] degrees, and the rotation, in [-20, 20] degrees (section 3.3); borders
replicated (Keras ``ImageDataGenerator``'s default fill, "nearest"). Every draw comes from a
generator seeded by ``seed`` and the original's path, so the copies do not depend on row order
or on how many threads write them (``workers``: OpenCV decodes, warps and encodes with the GIL
released, so the full CDD-CESM training split's ~7,000 mammogram-sized PNGs scale with cores).

A manifest with a ``fold`` column (the ERNet protocol) is not meant for this: the copies keep
their original's fold and would follow it into that fold's validation part.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Sequence

import cv2
import numpy as np
import pandas as pd

from breastcam.errors import DataError

KINDS = ("hflip", "vflip", "shift", "shear", "rotate")
SHIFT_RANGE = 0.1
SHEAR_RANGE = 16.0  # degrees
ROTATION_RANGE = 20.0  # degrees


def _affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def augment_copy(
    image: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    *,
    shift_range: float = SHIFT_RANGE,
    shear_range: float = SHEAR_RANGE,
    rotation_range: float = ROTATION_RANGE,
) -> np.ndarray:
    """One augmented copy of ``image`` (any dtype, 2-D or H x W x C) of the given kind."""
    h, w = image.shape[:2]
    if kind == "hflip":
        return np.ascontiguousarray(image[:, ::-1])
    if kind == "vflip":
        return np.ascontiguousarray(image[::-1])
    if kind == "shift":
        tx = rng.uniform(-shift_range, shift_range) * w
        ty = rng.uniform(-shift_range, shift_range) * h
        return _affine(image, np.array([[1, 0, tx], [0, 1, ty]], np.float64))
    if kind == "shear":
        # Keras' shear: x' = x - sin(s) y, y' = cos(s) y, about the image centre.
        s = math.radians(rng.uniform(-shear_range, shear_range))
        lin = np.array([[1.0, -math.sin(s)], [0.0, math.cos(s)]])
        centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
        return _affine(image, np.hstack([lin, (centre - lin @ centre)[:, None]]))
    if kind == "rotate":
        angle = rng.uniform(-rotation_range, rotation_range)
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
        return _affine(image, matrix)
    raise DataError(f"unknown modres copy kind {kind!r}; expected one of {KINDS}")


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"cannot read image {path} for the modres expansion")
    return image


def expand_modres(
    df: pd.DataFrame,
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    copies: Sequence[str] = KINDS,  # all five: paper 004 section 3.3 + Algorithm 1
    shift_range: float = SHIFT_RANGE,
    shear_range: float = SHEAR_RANGE,
    rotation_range: float = ROTATION_RANGE,
    workers: int | None = None,
) -> pd.DataFrame:
    """Write augmented copies of the training rows of ``df`` and return the expanded manifest.

    ``df`` needs ``path`` (relative to ``root``, or absolute) and ``split``. Returns the original
    rows (unchanged, plus empty ``augmented_from``/``augmentation``) followed by one new row per
    training row and kind, so the training split grows (1 + len(copies))-fold. Also writes
    ``out_dir/modres.json`` (seed, kinds, parameters, counts). ``workers``: threads writing
    copies (default: the cores, at most 8); the output does not depend on it.
    """
    if "split" not in df.columns or "path" not in df.columns:
        raise DataError(
            "expand_modres needs a split manifest with 'path' and 'split' columns; "
            f"got columns {list(df.columns)} (split it first with breastcam.data.make_split)"
        )
    copies = tuple(copies)
    bad = [k for k in copies if k not in KINDS]
    if bad or len(set(copies)) != len(copies):
        raise DataError(f"copies must be distinct kinds from {KINDS}, got {copies!r}")
    train = df[df["split"] == "train"]
    if train.empty:
        raise DataError("expand_modres: the manifest has no rows with split == 'train'")
    root = Path(root)
    out_dir = Path(out_dir).resolve()

    def copies_of(row: pd.Series) -> list[pd.Series]:
        rel = PurePosixPath(str(row["path"]))
        source = Path(rel) if rel.is_absolute() else root / Path(rel)
        image = _read(source)
        rng = np.random.default_rng([int(seed), zlib.crc32(str(rel).encode("utf-8"))])
        sub = PurePosixPath(*[p for p in rel.parent.parts if p not in ("/", "..", ".")])
        rows = []
        for kind in copies:
            target = out_dir / Path(sub) / f"{rel.stem}__{kind}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = augment_copy(
                image,
                kind,
                rng,
                shift_range=shift_range,
                shear_range=shear_range,
                rotation_range=rotation_range,
            )
            if not cv2.imwrite(str(target), copy):
                raise OSError(f"cannot write augmented copy {target}")
            new = row.copy()
            new["path"] = target.as_posix()
            new["split"] = "train"
            new["augmented_from"] = str(row["path"])
            new["augmentation"] = kind
            rows.append(new)
        return rows

    # map keeps the manifest order; the first failing image's error is raised as it is.
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        new_rows = [new for rows in pool.map(copies_of, [row for _, row in train.iterrows()]) for new in rows]

    base = df.copy()
    base["augmented_from"] = ""
    base["augmentation"] = ""
    added = pd.DataFrame(new_rows, columns=base.columns)
    result = pd.concat([base, added], ignore_index=True)
    record = {
        "recipe": "modres",
        "seed": int(seed),
        "copies": list(copies),
        "shift_range": shift_range,
        "shear_range_degrees": shear_range,
        "rotation_range_degrees": rotation_range,
        "training_rows": int(len(train)),
        "rows_written": int(len(added)),
    }
    (out_dir / "modres.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return result
