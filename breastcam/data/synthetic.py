"""A small, deterministic, H&E-like image set for the offline demo and for tests.

Each image is a pink (eosin) tissue background with fibres, pale spaces and texture, and
purple-blue (hematoxylin) nuclei drawn as filled ellipses. The two classes differ the way
pathologists describe carcinoma against benign tissue: ``malignant`` tiles have more nuclei
(about 2.5x), bigger ones (about 1.7x the axes), darker and more irregular in outline.
Every patient has one class and a slightly different stain colour, so patient-level splits
matter here as they do on BreakHis.

Output is byte-identical for the same arguments and library versions: every random draw comes
from a generator seeded by ``(seed, patient, image)`` and PNGs are written with a fixed
compression level.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from breastcam.errors import DataError

CLASSES = ("benign", "malignant")

# Per class: mean nuclei per tile, half-axis range (px at 128), outline jitter
# (fraction of the radius), nucleus colour (RGB) at full opacity.
_NUCLEI = {
    "benign": dict(count=14, axes=(2.2, 3.6), jitter=0.05, colour=(150, 95, 185)),
    "malignant": dict(count=34, axes=(3.8, 6.2), jitter=0.22, colour=(75, 35, 125)),
}
_EOSIN = np.array([232.0, 165.0, 200.0])
_FIBRE = np.array([205.0, 115.0, 165.0])
_LUMEN = np.array([246.0, 236.0, 242.0])
_PNG_COMPRESSION = 6


def make_synthetic(
    out_dir: str | os.PathLike,
    *,
    n_patients: int = 12,
    images_per_patient: int = 4,
    image_size: tuple[int, int] = (128, 128),
    seed: int = 0,
    workers: int | None = None,
) -> pd.DataFrame:
    """Write the image set and its ``manifest.csv`` into ``out_dir``; return the manifest.

    Patients alternate between the classes (``P000`` benign, ``P001`` malignant, ...), so the
    classes are balanced for an even ``n_patients``. Files are ``<label>/<patient>_<k>.png``;
    the manifest has ``path`` (relative to ``out_dir``), ``label``, ``label_index``,
    ``patient_id`` and ``magnification`` (40 for all). ``image_size`` is (height, width);
    ``workers`` threads write the files (default: up to 8), with the same bytes as one.
    """
    if n_patients < 2:
        raise DataError(f"n_patients must be at least 2 (one per class), got {n_patients}")
    if images_per_patient < 1:
        raise DataError(f"images_per_patient must be at least 1, got {images_per_patient}")
    height, width = (int(v) for v in image_size)
    if height < 16 or width < 16:
        raise DataError(f"image_size must be at least 16x16, got {image_size!r}")

    out = Path(out_dir)
    for label in CLASSES:
        (out / label).mkdir(parents=True, exist_ok=True)

    def write(patient: int, k: int) -> dict:
        label_index = patient % 2
        label = CLASSES[label_index]
        patient_id = f"P{patient:03d}"
        # The patient's stain: a shade shared by all its images.
        stain_shift = np.random.default_rng([seed, patient]).normal(0.0, 6.0, size=3)
        tile = _draw_tile(np.random.default_rng([seed, patient, k]), label, (height, width), stain_shift)
        rel = f"{label}/{patient_id}_{k:02d}.png"
        if not cv2.imwrite(str(out / rel), tile[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESSION]):
            raise OSError(f"could not write {out / rel}")
        return dict(path=rel, label=label, label_index=label_index, patient_id=patient_id, magnification=40)

    # Every image has its own seed, so threads (OpenCV and NumPy release the GIL) change nothing
    # but the time: a BreakHis-40X-sized set (1,995 tiles of 700x460) is minutes single-threaded.
    jobs = [(patient, k) for patient in range(n_patients) for k in range(images_per_patient)]
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        rows = list(pool.map(lambda job: write(*job), jobs))
    df = pd.DataFrame(rows)
    df.to_csv(out / "manifest.csv", index=False)
    df.attrs["classes"] = list(CLASSES)
    return df


def _draw_tile(
    rng: np.random.Generator, label: str, size: tuple[int, int], stain_shift: np.ndarray
) -> np.ndarray:
    """One uint8 RGB tile of class ``label``."""
    height, width = size
    scale = np.sqrt(height * width) / 128.0

    # Eosin background with slow texture, pale spaces and fibres.
    image = np.zeros((height, width, 3)) + _EOSIN + stain_shift
    image += _smooth_noise(rng, size, cells=6)[:, :, None] * 10.0
    lumen = np.zeros(size, np.uint8)
    for _ in range(rng.integers(1, 4)):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.uniform(6, 16) * scale), int(rng.uniform(4, 12) * scale))
        cv2.ellipse(lumen, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
    image = _blend(image, _LUMEN, cv2.GaussianBlur(lumen, (5, 5), 0) / 255.0 * 0.9)
    fibres = np.zeros(size, np.uint8)
    for _ in range(int(rng.integers(4, 9))):
        points = np.cumsum(rng.normal(0.0, 10.0 * scale, size=(6, 2)), axis=0)
        points += (rng.uniform(0, width), rng.uniform(0, height))
        cv2.polylines(fibres, [points.astype(np.int32)], False, 255, 1, cv2.LINE_AA)
    image = _blend(image, _FIBRE + stain_shift, fibres / 255.0 * 0.6)

    # Hematoxylin nuclei: a soft opacity mask with chromatin texture.
    spec = _NUCLEI[label]
    nuclei = np.zeros(size, np.uint8)
    # Counts are per tile and sizes scale with it: any image_size looks like the same tissue.
    for _ in range(int(rng.poisson(spec["count"]))):
        centre = rng.uniform((0, 0), (width, height))
        axes = rng.uniform(*spec["axes"], size=2) * scale
        outline = _nucleus_outline(rng, centre, axes, float(rng.uniform(0, 180)), spec["jitter"])
        cv2.fillPoly(nuclei, [outline], int(rng.integers(190, 256)), cv2.LINE_AA)
    opacity = cv2.GaussianBlur(nuclei, (3, 3), 0) / 255.0
    opacity *= np.clip(1.0 + 0.2 * rng.standard_normal(size), 0.6, 1.3)
    image = _blend(image, np.array(spec["colour"], float) + stain_shift, np.clip(opacity, 0, 1))

    image += rng.normal(0.0, 3.0, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _nucleus_outline(rng, centre, axes, angle: float, jitter: float) -> np.ndarray:
    """A closed polygon: an ellipse whose radius wobbles by ``jitter`` (irregular nuclei)."""
    theta = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
    radius = 1.0 + jitter * rng.standard_normal(theta.size)
    x, y = axes[0] * radius * np.cos(theta), axes[1] * radius * np.sin(theta)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    points = np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)
    return np.round(points).astype(np.int32)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean noise varying over about ``size / cells`` pixels."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_CUBIC).astype(float)


def _blend(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    alpha = alpha[:, :, None]
    return image * (1.0 - alpha) + colour * alpha
