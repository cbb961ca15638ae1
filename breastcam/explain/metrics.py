"""Localisation metrics of a CAM map against a binary region mask (paper 001 Table XIV).

The map is resized to the mask's size (bilinear), binarised — ``threshold="otsu"`` (OpenCV's
256-bin Otsu on the map scaled to uint8, as DT Grad-CAM does) or a float ``t`` (pixels with map
``> t``) — and compared with the mask pixel by pixel. For maps that are already thresholded
(DT Grad-CAM) use ``threshold=0.0``: the region the method kept.

Conventions for empty sets: when both the mask and the prediction are empty every score is 1;
otherwise a ratio with a zero denominator is 0. (An image without a lesion has nothing to
localise: callers such as :func:`breastcam.explain.run.explain_files` leave such rows empty.)
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import pandas as pd

from breastcam.errors import DataError

METRICS = ("iou", "dice", "precision", "recall", "f1")


def binarize(cam, threshold: str | float = "otsu", size: tuple[int, int] | None = None) -> np.ndarray:
    """The map as a bool region, after resizing to ``size`` = ``(H, W)`` if given."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32))
    if cam.ndim != 2:
        raise DataError(f"cam must be a 2-D map, got shape {cam.shape}")
    if size is not None and tuple(size) != cam.shape:
        cam = cv2.resize(cam, (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)
    if isinstance(threshold, str):
        if threshold != "otsu":
            raise DataError(f"threshold must be 'otsu' or a number, got {threshold!r}")
        u8 = np.clip(np.rint(np.clip(cam, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
        t, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        return u8 > t
    return cam > float(threshold)


def _ratio(num: float, den: float, both_empty: bool) -> float:
    if den == 0:
        return 1.0 if both_empty else 0.0
    return float(num) / float(den)


def mask_metrics(cam, mask, threshold: str | float = "otsu") -> dict[str, float]:
    """IoU, Dice, precision, recall and F1 of the thresholded map against ``mask`` (non-zero = in)."""
    truth = np.asarray(mask)
    if truth.ndim == 3:
        truth = truth[..., 0]
    if truth.ndim != 2:
        raise DataError(f"mask must be a 2-D array, got shape {truth.shape}")
    truth = truth != 0
    pred = binarize(cam, threshold, truth.shape)
    tp = float(np.count_nonzero(pred & truth))
    fp = float(np.count_nonzero(pred & ~truth))
    fn = float(np.count_nonzero(~pred & truth))
    both_empty = not truth.any() and not pred.any()
    precision = _ratio(tp, tp + fp, both_empty)
    recall = _ratio(tp, tp + fn, both_empty)
    return {
        "iou": _ratio(tp, tp + fp + fn, both_empty),
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, both_empty),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall, both_empty),
    }


def mask_metrics_batch(
    cams: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None],
    threshold: str | float = "otsu",
    ids: Sequence | None = None,
) -> pd.DataFrame:
    """One row of :func:`mask_metrics` per (map, mask) pair; a ``None`` mask gives NaNs.

    ``ids`` (default 0..B-1) becomes the ``id`` column.
    """
    if len(cams) != len(masks):
        raise DataError(f"got {len(cams)} maps but {len(masks)} masks")
    ids = list(range(len(cams))) if ids is None else list(ids)
    rows = []
    for i, cam, mask in zip(ids, cams, masks):
        row = {"id": i}
        row.update(dict.fromkeys(METRICS, np.nan) if mask is None else mask_metrics(cam, mask, threshold))
        rows.append(row)
    return pd.DataFrame(rows, columns=["id", *METRICS])


def summarize(frame: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Mean of the metric columns (rows with NaN ignored), overall or per group ``by``."""
    cols = [c for c in METRICS if c in frame.columns]
    if by is None:
        return frame[cols].mean().to_frame().T
    return frame.groupby(by)[cols].mean().reset_index()
