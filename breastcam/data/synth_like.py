"""Full-size synthetic copies of the public datasets: real file names, sizes and formats.

Why: rehearsing a protocol (time per epoch, memory, cache and checkpoint sizes) on a machine
that does not hold the data needs files that cost what the real ones cost to read and decode.
``synth_like(reference, out)`` writes one image for every row of a reference manifest
(``data_manifests/<dataset>.csv``) at its relative path, so the loaders, ``validate --against``
and ``reproduce`` treat the tree as a download (label files included). Content is tissue-like
(H&E tiles from :mod:`breastcam.data.synthetic`) or mammogram-like (a grey breast with brighter
masses for abnormal rows): a pipeline can be timed on it, but nothing learnt from it means anything.

Sizes: BreakHis 700x460 RGB PNG (Spanhol et al. 2016), BACH 2048x1536 RGB TIFF (Aresta et al.
2019), mini-MIAS 1024x1024 8-bit PGM (Suckling et al. 1994). Mammogram sizes vary within
Mini-DDSM and CDD-CESM; the defaults below are representative guesses, not measured here (no
image of either is available on this machine) - pass ``size=`` for your copy's.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from breastcam.data.synth_labels import write_label_files
from breastcam.data.synthetic import CLASSES, _draw_tile
from breastcam.errors import DataError

#: (height, width), channels per dataset.
FORMATS: dict[str, tuple[tuple[int, int], int]] = {
    "breakhis": ((460, 700), 3),
    "bach": ((1536, 2048), 3),
    "mias": ((1024, 1024), 1),
    "miniddsm": ((1600, 1000), 1),
    "cddcesm": ((2200, 1700), 1),
}


def synth_like(
    reference: pd.DataFrame,
    out: str | os.PathLike,
    dataset: str,
    *,
    fraction: float = 1.0,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    workers: int | None = None,
) -> pd.DataFrame:
    """Write a synthetic image for each (sampled) reference row under ``out``; return the rows.

    ``fraction`` < 1 keeps that share of every class (seeded, at least one image per class), so
    growth from 10 % to 100 % of a dataset can be measured. Existing files are overwritten.
    The label files a loader needs (mini-MIAS ``Info.txt``, the CDD-CESM annotation sheet) are
    written for the rows kept (:mod:`breastcam.data.synth_labels`).
    """
    if dataset not in FORMATS:
        raise DataError(f"synth: no format known for dataset {dataset!r}; choose one of {sorted(FORMATS)}")
    if not 0.0 < fraction <= 1.0:
        raise DataError(f"synth: fraction must be in (0, 1], got {fraction!r}")
    missing = {"path", "label_index"} - set(reference.columns)
    if missing:
        raise DataError(f"synth: the reference manifest lacks column(s) {sorted(missing)}")
    rows = reference
    if fraction < 1.0:
        keep = [index for _, group in reference.groupby("label_index")
                for index in group.sample(max(1, round(len(group) * fraction)), random_state=seed).index]
        rows = reference.loc[sorted(keep)]
    shape, channels = FORMATS[dataset]
    shape = tuple(size) if size else shape
    root = Path(out)
    top = int(reference["label_index"].max())

    def write(item: tuple[int, pd.Series]) -> None:
        index, row = item
        rng = np.random.default_rng([seed, int(index)])
        abnormal = int(row["label_index"]) / top if top else 0.0
        if channels == 3:
            style = CLASSES[1] if abnormal >= 0.5 else CLASSES[0]
            image = _draw_tile(rng, style, shape, rng.normal(0.0, 6.0, size=3))[:, :, ::-1]
        else:
            image = _draw_mammogram(rng, shape, abnormal)
        path = root / str(row["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image):
            raise OSError(f"synth: could not write {path}")

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(write, rows.iterrows()))
    write_label_files(rows, root, dataset)  # mini-MIAS Info.txt, CDD-CESM sheet
    return rows


def _draw_mammogram(rng: np.random.Generator, shape: tuple[int, int], abnormal: float) -> np.ndarray:
    """A uint8 grey film: dark background, a half-ellipse breast with texture, masses if abnormal."""
    height, width = shape
    image = np.zeros(shape, np.float32)
    side = int(rng.integers(0, 2))
    centre = (0 if side == 0 else width - 1, height // 2)
    axes = (int(width * rng.uniform(0.55, 0.8)), int(height * rng.uniform(0.35, 0.45)))
    breast = np.zeros(shape, np.uint8)
    cv2.ellipse(breast, centre, axes, 0, 0, 360, 255, -1)
    coarse = rng.standard_normal((12, 12)).astype(np.float32)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image += (breast / 255.0) * (120.0 + 25.0 * texture)
    for _ in range(int(rng.poisson(3 * abnormal))):
        mass = np.zeros(shape, np.uint8)
        x = int(rng.uniform(0.15, 0.6) * width) if side == 0 else int(rng.uniform(0.4, 0.85) * width)
        y = int(rng.uniform(0.3, 0.7) * height)
        radius = max(2, int(min(shape) * rng.uniform(0.02, 0.06)))  # >= 2 px: small --size trees
        cv2.circle(mass, (x, y), radius, 255, -1)
        image += cv2.GaussianBlur(mass, (0, 0), radius / 2) / 255.0 * 70.0 * (breast / 255.0)
    image += rng.normal(0.0, 4.0, size=shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
