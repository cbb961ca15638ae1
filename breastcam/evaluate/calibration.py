"""Calibration: reliability curve, expected / maximum calibration error, Brier score.

ECE here is the top-label ECE of Guo et al. (2017): each image's confidence is its highest class
probability and it counts as correct when that class is the truth; images are put into
``n_bins`` equal-width bins of confidence over [0, 1] (bin b holds ``(b/n, (b+1)/n]``, the first
bin also holds 0), and ``ECE = sum_b (n_b / N) * |accuracy_b - confidence_b|``. MCE is the largest
``|accuracy_b - confidence_b|`` over non-empty bins. sklearn has no ECE (its
``calibration_curve`` is per-class and drops empty bins), so it is computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from breastcam.errors import DataError


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    # Right-closed bins (lo, hi]; a confidence of exactly 0 goes to the first bin.
    idx = np.ceil(confidence * n_bins).astype(np.int64) - 1
    return np.clip(idx, 0, n_bins - 1)


def reliability_curve(y_true: Any, y_prob: Any, n_bins: int = 15) -> dict[str, Any]:
    """Per-bin confidence and accuracy of the top-label prediction, with ECE and MCE.

    Returns ``{"bin_lower", "bin_upper", "confidence", "accuracy", "count"}`` (lists of
    length ``n_bins``; ``confidence`` and ``accuracy`` are ``None`` for empty bins) plus
    ``"ece"``, ``"mce"`` and ``"n_bins"``.
    """
    if int(n_bins) < 1:
        raise DataError(f"n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    confidence = y_prob.max(axis=1)
    correct = (np.argmax(y_prob, axis=1) == y_true).astype(np.float64)
    idx = _bin_index(confidence, n_bins)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(idx, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    filled = count > 0
    conf_mean = np.divide(conf_sum, count, out=np.zeros(n_bins), where=filled)
    acc_mean = np.divide(acc_sum, count, out=np.zeros(n_bins), where=filled)
    gap = np.abs(acc_mean - conf_mean)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {
        "n_bins": n_bins,
        "bin_lower": edges[:-1].tolist(),
        "bin_upper": edges[1:].tolist(),
        "confidence": [float(c) if f else None for c, f in zip(conf_mean, filled)],
        "accuracy": [float(a) if f else None for a, f in zip(acc_mean, filled)],
        "count": count.astype(int).tolist(),
        "ece": float(np.sum(gap * count) / count.sum()),
        "mce": float(gap[filled].max()) if filled.any() else 0.0,
    }


def expected_calibration_error(y_true: Any, y_prob: Any, n_bins: int = 15) -> float:
    """Top-label ECE with ``n_bins`` equal-width bins (see the module docstring)."""
    return reliability_curve(y_true, y_prob, n_bins)["ece"]


def brier_score(y_true: Any, y_prob: Any) -> float:
    """Mean over images and classes of ``(p_ik - onehot_ik)^2``.

    Binary: equals ``sklearn.metrics.brier_score_loss(y == 1, p[:, 1])``. K classes: sklearn's
    multi-class ``brier_score_loss`` (a sum over classes) divided by K.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    onehot = np.eye(y_prob.shape[1])[y_true]
    return float(np.mean((y_prob - onehot) ** 2))
