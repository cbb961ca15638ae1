"""Intervals over repeated runs stay inside the metric's range and say how they were made."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from breastcam.evaluate.statistics import bootstrap_method, metric_range, runs_interval


def test_two_runs_interval_stays_in_range_and_is_not_decisive():
    # The ernet-breakhis quick report printed "95 % CI [-1.4633, 1.7133]" for two folds with
    # sensitivity 0.0 and 0.25 (mean 0.125): t(0.975, 1) = 12.71 times s / sqrt(2).
    out = runs_interval([0.0, 0.25], "sensitivity")
    assert 0.0 <= out["low"] <= out["high"] <= 1.0
    assert out["low"] == 0.0 and out["high"] == 1.0  # clipped on both sides
    assert out["decisive"] is False
    assert "2 runs" in out["method"] and "clipped to [0, 1]" in out["method"]
    assert "fewer than 3 runs" in out["method"]


def test_enough_runs_give_the_plain_t_interval():
    values = [0.90, 0.92, 0.91, 0.93, 0.89]
    out = runs_interval(values, "accuracy")
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / math.sqrt(5)
    assert out["low"] == pytest.approx(np.mean(values) - half, abs=1e-12)
    assert out["high"] == pytest.approx(np.mean(values) + half, abs=1e-12)
    assert out["decisive"] is True and out["method"] == "t-interval of the mean of 5 runs"


def test_an_interval_clipped_at_one_is_not_decisive():
    out = runs_interval([1.0, 1.0, 0.8, 1.0], "g_mean")
    assert out["high"] == 1.0 and out["decisive"] is False
    assert "wider than the metric's range" in out["method"]


def test_ranges_of_metrics():
    assert metric_range("iba") == (0.0, 1.0)
    assert metric_range("f1_per_class.benign") == (0.0, 1.0)
    assert metric_range("n_params") == (0.0, math.inf)
    out = runs_interval([190.0, 210.0, 200.0], "convergence_time")
    assert out["high"] > 210.0 and out["decisive"] is True  # seconds: no upper bound


def test_one_run_has_no_interval_and_bootstrap_method_is_named():
    out = runs_interval([0.5], "accuracy")
    assert math.isnan(out["low"]) and out["decisive"] is False
    text = bootstrap_method({"bootstrap": {"n_bootstrap": 1000, "seed": 0, "stratified": False}})
    assert text == "percentile bootstrap over the test images (1000 resamples, seed 0)"


def _runs(n_per_run: int, runs: int = 2, seed: int = 1):
    """``runs`` test sets of ``n_per_run`` images, about 80 % right (a known sample)."""
    rng = np.random.default_rng(seed)
    y_trues, y_probs = [], []
    for _ in range(runs):
        y = rng.integers(0, 2, n_per_run)
        right = rng.random(n_per_run) < 0.8
        p1 = np.where(right == (y == 1), 0.7, 0.3)
        y_trues.append(y)
        y_probs.append(np.stack([1 - p1, p1], axis=1))
    return y_trues, y_probs


def test_pooled_bootstrap_in_range_seeded_and_narrows_with_n():
    from breastcam.evaluate.statistics import pooled_bootstrap

    y_trues, y_probs = _runs(40)
    a = pooled_bootstrap(y_trues, y_probs, n_bootstrap=400, seed=3, definitions=["binary"])
    b = pooled_bootstrap(y_trues, y_probs, n_bootstrap=400, seed=3, definitions=["binary"])
    c = pooled_bootstrap(y_trues, y_probs, n_bootstrap=400, seed=4, definitions=["binary"])
    assert a["ci"] == b["ci"] and a["paper_ci"] == b["paper_ci"]  # same seed, same interval
    assert a["ci"] != c["ci"]
    for lo, hi in [*a["ci"].values(), *a["paper_ci"]["binary"].values()]:
        assert 0.0 <= lo <= hi <= 1.0
    assert "pooled test predictions of 2 runs (80 images, 400 resamples, seed 3)" in a["method"]
    big = pooled_bootstrap(*_runs(1000), n_bootstrap=400, seed=3)
    width = {m: hi - lo for m, (lo, hi) in a["ci"].items()}
    for m in ("accuracy", "sensitivity", "specificity", "g_mean"):
        lo, hi = big["ci"][m]
        assert hi - lo < 0.5 * width[m]  # 25x the images: about 1/5 of the width


def test_pooled_bootstrap_of_a_perfect_sample_stays_at_one():
    from breastcam.evaluate.statistics import pooled_bootstrap

    y = [np.array([0, 1, 1, 0]), np.array([1, 0])]
    p = [np.eye(2)[t] for t in y]
    out = pooled_bootstrap(y, p, n_bootstrap=50, seed=0)
    assert out["ci"]["accuracy"] == [1.0, 1.0]
