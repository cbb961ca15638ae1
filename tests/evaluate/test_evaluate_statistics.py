"""Bootstrap intervals, McNemar, DeLong and mean +- std."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, roc_auc_score

from breastcam.evaluate import (
    bootstrap_ci,
    bootstrap_metrics,
    classification_metrics,
    delong_roc_variance,
    delong_test,
    mcnemar_test,
    mean_std,
)
from breastcam.evaluate.metrics import HEADLINE_METRICS
from breastcam.evaluate.statistics import mcnemar_from_counts, weighted_auc


def _predictions(n, k, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


# --- bootstrap --------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 4])
def test_bootstrap_is_seeded_and_contains_the_point_estimate(k):
    y, p = _predictions(300, k, seed=k)
    a = bootstrap_metrics(y, p, n_bootstrap=500, seed=3)
    b = bootstrap_metrics(y, p, n_bootstrap=500, seed=3)
    c = bootstrap_metrics(y, p, n_bootstrap=500, seed=4)
    assert a == b
    assert a["ci"] != c["ci"]
    point = classification_metrics(y, p)
    assert set(a["ci"]) == set(HEADLINE_METRICS)
    for metric, (low, high) in a["ci"].items():
        assert low <= point[metric] <= high, metric
        assert high - low < 0.25, metric


def test_bootstrap_resamples_match_the_sklearn_metrics():
    """Resample-level values equal classification_metrics on the same resample (AUC included)."""
    y, p = _predictions(120, 3, seed=1)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(y), size=(3, len(y)))
    weights = np.stack([np.bincount(i, minlength=len(y)) for i in idx]).astype(float)
    for c in range(3):
        aucs = weighted_auc(y == c, p[:, c], weights)
        for i, w in zip(idx, aucs):
            assert w == pytest.approx(roc_auc_score(y[i] == c, p[i, c]), abs=1e-12)


def test_bootstrap_with_a_rare_class_redraws_one_class_resamples():
    # 1 positive among 30: about a third of plain resamples lack it.
    y = np.array([0] * 29 + [1])
    p = np.stack([np.linspace(0.9, 0.4, 30), np.linspace(0.1, 0.6, 30)], axis=1)
    out = bootstrap_metrics(y, p, n_bootstrap=300, seed=0)
    assert out["redrawn"] > 50
    assert all(v is not None for v in out["ci"].values())
    strat = bootstrap_metrics(y, p, n_bootstrap=300, seed=0, stratify=True)
    assert strat["redrawn"] == 0 and strat["stratified"]
    one_class = bootstrap_metrics(np.zeros(10, int), np.tile([0.7, 0.3], (10, 1)), n_bootstrap=50)
    assert one_class["ci"]["roc_auc"] is None and one_class["ci"]["accuracy"] == [1.0, 1.0]


def test_generic_bootstrap_ci():
    y, p = _predictions(200, 2, seed=9)
    pred = p.argmax(axis=1)
    ci = bootstrap_ci(accuracy_score, y, pred, n_bootstrap=300, seed=1)
    assert ci == bootstrap_ci(accuracy_score, y, pred, n_bootstrap=300, seed=1)
    assert ci[0] <= accuracy_score(y, pred) <= ci[1]
    fast = bootstrap_metrics(y, p, n_bootstrap=300, seed=1)["ci"]["accuracy"]
    assert ci == pytest.approx(fast, abs=0.03)  # same method, different draws


# --- McNemar ----------------------------------------------------------------------------------


def test_mcnemar_exact_on_a_hand_made_table():
    # 10 images. A right / B wrong on 5; B right / A wrong on 1; both right on 3, both wrong on 1.
    y = np.zeros(10, int)
    pred_a = np.array([0, 0, 0, 0, 0, 1, 0, 0, 0, 1])
    pred_b = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 1])
    r = mcnemar_test(y, pred_a, pred_b)
    assert r["table"] == [[3, 5], [1, 1]] and (r["b"], r["c"]) == (5, 1)
    assert r["method"] == "exact"
    assert r["p_value"] == pytest.approx(stats.binomtest(5, 6, 0.5).pvalue)
    assert r["p_value"] == pytest.approx(14 / 64)  # 2 * P(X <= 1), X ~ Bin(6, 1/2)
    swapped = mcnemar_test(y, pred_b, pred_a)
    assert swapped["p_value"] == pytest.approx(r["p_value"])


def test_mcnemar_chi_square_with_continuity_correction():
    r = mcnemar_from_counts(30, 12)
    stat = (abs(30 - 12) - 1) ** 2 / 42
    assert r["method"] == "chi2_cc"
    assert r["statistic"] == pytest.approx(stat)
    assert r["p_value"] == pytest.approx(stats.chi2.sf(stat, 1))
    assert mcnemar_from_counts(12, 12)["method"] == "exact"  # 24 discordant < 25
    assert mcnemar_from_counts(0, 0)["p_value"] == 1.0


# --- DeLong -----------------------------------------------------------------------------------


def _delong_reference(y, score):
    """O(m n) DeLong variance from the Heaviside kernel (DeLong et al. 1988)."""
    pos, neg = score[y == 1], score[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)


def test_delong_by_hand():
    # Positives 0.9, 0.6; negatives 0.7, 0.2: AUC 3/4; V10 = [1, .5], V01 = [.5, 1] -> var 1/8.
    y = np.array([1, 1, 0, 0])
    auc, var = delong_roc_variance(y, np.array([0.9, 0.6, 0.7, 0.2]))
    assert auc == pytest.approx(0.75) and var == pytest.approx(0.125)


def test_delong_matches_sklearn_auc_and_the_pairwise_definition():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    a = np.round(y * 0.6 + rng.normal(size=80), 1)  # rounded: many ties, midranks matter
    b = np.round(y * 0.3 + rng.normal(size=80), 1)
    auc, var = delong_roc_variance(y, a)
    ref_auc, ref_var = _delong_reference(y, a)
    assert auc == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert auc == pytest.approx(ref_auc) and var == pytest.approx(ref_var, rel=1e-10)

    r = delong_test(y, a, b)
    assert r["auc_a"] == pytest.approx(roc_auc_score(y, a))
    assert r["auc_b"] == pytest.approx(roc_auc_score(y, b))
    assert r["var_a"] == pytest.approx(var)
    assert 0 < r["p_value"] < 1
    assert r["p_value"] == pytest.approx(2 * stats.norm.sf(abs(r["z"])))
    s = delong_test(y, b, a)  # symmetric: same p, opposite z
    assert s["p_value"] == pytest.approx(r["p_value"]) and s["z"] == pytest.approx(-r["z"])
    same = delong_test(y, a, a)
    assert same["p_value"] == pytest.approx(1.0) and same["z"] == 0.0
    strong = delong_test(y, y + 0.01 * rng.normal(size=80), b)
    assert strong["p_value"] < 1e-3


def test_delong_needs_both_classes():
    with pytest.raises(ValueError, match="positive"):
        delong_test([1, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])


# --- repeated runs ----------------------------------------------------------------------------


def test_mean_std_over_runs():
    runs = [
        {"accuracy": 0.8, "f1_per_class": {"a": 0.5}, "roc_auc": None, "ci": {"accuracy": [0, 1]},
         "class_names": ["a", "b"], "confusion_matrix": [[1, 0], [0, 1]]},
        {"accuracy": 0.9, "f1_per_class": {"a": 0.7}, "roc_auc": 0.9},
    ]
    out = mean_std(runs)
    assert out["accuracy"]["mean"] == pytest.approx(0.85)
    assert out["accuracy"]["std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert out["f1_per_class.a"]["mean"] == pytest.approx(0.6)
    assert out["roc_auc"] == {"mean": 0.9, "std": 0.0, "n": 1, "min": 0.9, "max": 0.9}
    assert not any(k.startswith(("ci", "confusion", "class_names")) for k in out)
