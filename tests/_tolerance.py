"""Comparisons for numbers that floating point makes machine-dependent.

The same computation run on another x86-64 CPU, with ``TF_ENABLE_ONEDNN_OPTS`` 0 or 1, on a
batch of another size, or in graph instead of eager mode may sum in another order: float32
results then differ in their last bits. That is harmless until a value is rounded or cut:

- an image rounded to uint8 moves by one grey level where the exact value sits on a ``.5``;
- a mask cut at a threshold flips the pixels that sit on the threshold.

So tests compare rounded images within one grey level *and* bound how many values may move
(a real bug moves many, or by more than one level), and masks by their IoU. Exact equality is
kept for what is exact: integer bookkeeping, file bytes, and one computation repeated in the
same process on the same batch.

Import from a test as ``from _tolerance import assert_images_close, assert_masks_match``.
"""

from __future__ import annotations

import numpy as np

# One grey level: what rounding a float32 value that sits on a .5 can move.
GREY_LEVELS = 1
# Share of values allowed to move by that one level. Measured: Macenko on 12 BreakHis tiles at
# 224 px, the batch of 12 against each tile alone, moves 20-22 of 1.8 M values (1.2e-5) with
# oneDNN on or off. 1e-3 leaves ~100x room and still fails a systematic shift or a wrong
# region, which move a large share of the values (or by more than one level).
MAX_FRACTION_DIFFERENT = 1e-3
# Masks cut at a data-dependent threshold (Otsu): only pixels on the threshold may flip.
MIN_MASK_IOU = 0.98


def assert_images_close(
    actual,
    expected,
    *,
    grey_levels: int = GREY_LEVELS,
    max_fraction: float = MAX_FRACTION_DIFFERENT,
    max_count: int | None = None,
) -> int:
    """Images of integer grey levels (uint8 or float holding integers) equal within
    ``grey_levels`` at every value, with at most ``max_fraction`` of the values (or
    ``max_count`` values, if given) differing at all. Returns how many values differ."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    diff = np.abs(a - b)
    worst = float(diff.max()) if diff.size else 0.0
    differing = int(np.count_nonzero(diff))
    allowed = max_count if max_count is not None else int(max_fraction * diff.size)
    where = np.unravel_index(int(diff.argmax()), diff.shape) if diff.size else ()
    assert worst <= grey_levels, (
        f"values differ by up to {worst:g} grey levels (at index {tuple(int(i) for i in where)}: "
        f"{a[where]:g} vs {b[where]:g}); at most {grey_levels} allowed")
    assert differing <= allowed, (
        f"{differing} of {diff.size} values differ (by {grey_levels} grey level); at most "
        f"{allowed} allowed: more than float rounding at .5 explains")
    return differing


def mask_iou(a, b) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def assert_masks_match(actual, expected, *, min_iou: float = MIN_MASK_IOU) -> None:
    """Masks agree up to pixels on their threshold: IoU >= ``min_iou``, per leading index
    when the masks are batched (``[B, H, W]``)."""
    a, b = np.asarray(actual, bool), np.asarray(expected, bool)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    pairs = zip(a, b) if a.ndim == 3 else [(a, b)]
    for i, (x, y) in enumerate(pairs):
        iou = mask_iou(x, y)
        assert iou >= min_iou, (
            f"mask {i}: IoU {iou:.4f} < {min_iou} ({np.count_nonzero(x != y)} of {x.size} pixels differ)")


def assert_thresholded_maps_close(actual, expected, *, atol: float, min_iou: float = MIN_MASK_IOU) -> None:
    """Maps that are zero outside a thresholded region (DT Grad-CAM): the regions (map > 0)
    match by IoU, and where both keep a pixel the values agree within ``atol``."""
    a, b = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert_masks_match(a > 0, b > 0, min_iou=min_iou)
    both = (a > 0) & (b > 0)
    worst = float(np.abs(a - b)[both].max()) if both.any() else 0.0
    assert worst <= atol, f"kept values differ by up to {worst:.3g} > {atol}"
