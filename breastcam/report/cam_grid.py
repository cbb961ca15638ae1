"""The CAM comparison grid of paper 001 Fig. 7: Original | Grad-CAM | Score-CAM | Eigen-CAM | DT Grad-CAM.

One row per image (the paper: one per magnification), one column per method in the order of
``maps_by_method``. Each map is drawn over its image with the jet colormap at half opacity
(matplotlib resizes the map to the image's extent). Uses matplotlib's object API (no pyplot, no
display needed) and no TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from breastcam.errors import ConfigError

# Column titles for method names of breastcam.explain (others are shown as given).
METHOD_TITLES = {
    "gradcam": "Grad-CAM",
    "gradcampp": "Grad-CAM++",
    "scorecam": "Score-CAM",
    "eigencam": "Eigen-CAM",
    "dtgradcam": "DT Grad-CAM",
}
PAPER_ORDER = ("gradcam", "scorecam", "eigencam", "dtgradcam")


def _as_display(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.dtype != np.uint8:
        lo, hi = float(np.min(img)), float(np.max(img))
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img, dtype=np.float32)
    return img


def cam_grid(
    images: Sequence[np.ndarray] | np.ndarray,
    maps_by_method: Mapping[str, Sequence[np.ndarray] | np.ndarray],
    row_labels: Sequence[str] | None = None,
    out_path: str | os.PathLike | None = None,
    *,
    alpha: float = 0.5,
    cell_size: float = 2.2,
    dpi: int = 150,
) -> Figure:
    """A figure with the original images in the first column and one column per method.

    ``images``: RGB uint8 (or grey) images, one per row; ``maps_by_method``: method name ->
    ``[rows, h, w]`` maps in [0, 1] (any resolution). ``row_labels`` (e.g. ``"40X"``) label the
    rows. The figure is saved to ``out_path`` when given (format from the extension).
    """
    n = len(images)
    if n == 0:
        raise ConfigError("cam_grid needs at least one image")
    for method, maps in maps_by_method.items():
        if len(maps) != n:
            raise ConfigError(f"method {method!r} has {len(maps)} maps for {n} images")
    if row_labels is not None and len(row_labels) != n:
        raise ConfigError(f"got {len(row_labels)} row labels for {n} images")
    methods = list(maps_by_method)
    cols = 1 + len(methods)
    fig = Figure(figsize=(cell_size * cols, cell_size * n), dpi=dpi, layout="constrained")
    axes = np.atleast_2d(fig.subplots(n, cols, squeeze=False))
    titles = ["Original", *(METHOD_TITLES.get(m, m) for m in methods)]
    for r in range(n):
        img = _as_display(images[r])
        height, width = img.shape[:2]
        extent = (0, width, height, 0)
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, extent=extent)
            if c > 0:
                cam = np.nan_to_num(np.asarray(maps_by_method[methods[c - 1]][r], dtype=np.float32))
                ax.imshow(cam, cmap="jet", vmin=0.0, vmax=1.0, alpha=alpha, extent=extent,
                          interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=10)
            if c == 0 and row_labels is not None:
                ax.set_ylabel(str(row_labels[r]), fontsize=10)
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_path)
    return fig
