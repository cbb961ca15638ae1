"""metrics.json values against direct scikit-learn / imbalanced-learn calls; calibration."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.metrics import (
    geometric_mean_score,
    make_index_balanced_accuracy,
    sensitivity_specificity_support,
)
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from breastcam.evaluate import classification_metrics, expected_calibration_error, reliability_curve
from breastcam.evaluate.metrics import HEADLINE_METRICS, confusion_metrics, minority_index


def _predictions(n: int, k: int, seed: int, skew: float = 1.2):
    rng = np.random.default_rng(seed)
    # Imbalanced truth, informative but imperfect probabilities.
    weights = np.linspace(1.0, 2.5, k)
    y = rng.choice(k, size=n, p=weights / weights.sum())
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += skew
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 4])
def test_metrics_agree_with_sklearn_and_imblearn(k):
    names = ["benign", "malignant"] if k == 2 else ["Normal", "Benign", "InSitu", "Invasive"]
    y, p = _predictions(400, k, seed=k)
    pred = p.argmax(axis=1)
    m = classification_metrics(y, p, class_names=names)
    labels = list(range(k))
    approx = lambda v: pytest.approx(v, abs=1e-12)  # noqa: E731

    assert m["n"] == 400 and m["class_names"] == names and m["positive_class"] == names[-1]
    assert m["accuracy"] == approx(accuracy_score(y, pred))
    assert m["balanced_accuracy"] == approx(balanced_accuracy_score(y, pred))
    assert m["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    for avg in ("macro", "weighted"):
        assert m[f"f1_{avg}"] == approx(f1_score(y, pred, average=avg))
        assert m[f"precision_{avg}"] == approx(precision_score(y, pred, average=avg))
        assert m[f"recall_{avg}"] == approx(recall_score(y, pred, average=avg))
    per_class = f1_score(y, pred, average=None)
    assert m["f1_per_class"] == {n: approx(v) for n, v in zip(names, per_class)}
    minority = int(np.argmin(np.bincount(y)))
    assert m["minority_class"] == names[minority]
    assert m["f1_minority"] == approx(per_class[minority])
    assert m["confusion_matrix"] == confusion_matrix(y, pred).tolist()

    if k == 2:
        sens, spec, _ = sensitivity_specificity_support(y, pred, pos_label=1, average="binary")
        assert m["sensitivity"] == approx(recall_score(y, pred, pos_label=1))
        assert m["specificity"] == approx(recall_score(y, pred, pos_label=0))
        assert m["ppv"] == approx(precision_score(y, pred, pos_label=1))
        assert m["npv"] == approx(precision_score(y, pred, pos_label=0))  # TN / (TN + FN)
        assert m["roc_auc"] == approx(roc_auc_score(y, p[:, 1]))
        assert m["brier"] == approx(brier_score_loss(y, p[:, 1]))
        iba = make_index_balanced_accuracy(alpha=0.1, squared=False)(geometric_mean_score)
        assert m["iba"] == approx(iba(y, pred, average="binary", pos_label=1))
        assert m["g_mean"] == approx(np.sqrt(sens * spec))
    else:
        sens, spec, _ = sensitivity_specificity_support(y, pred, average="macro")
        assert m["sensitivity"] == approx(sens)
        assert m["specificity"] == approx(spec)
        assert m["ppv"] == approx(precision_score(y, pred, average="macro"))
        npv = [precision_score(y != c, pred != c) for c in labels]  # one-vs-rest NPV
        assert m["npv"] == approx(np.mean(npv))
        assert m["roc_auc"] == approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
        # sklearn's multi-class Brier sums over classes; ours is the mean over classes.
        assert m["brier"] == approx(brier_score_loss(y, p) / k)
        iba = make_index_balanced_accuracy(alpha=0.1, squared=False)(geometric_mean_score)
        assert m["iba"] == approx(iba(y, pred, labels=labels))
    assert m["g_mean"] == approx(geometric_mean_score(y, pred))
    assert m["params"] == {"iba_alpha": 0.1, "iba_squared": False,
                           "iba_average": "binary" if k == 2 else "multiclass", "ece_bins": 15}


def test_iba_parameters_are_passed_to_imblearn():
    y, p = _predictions(200, 2, seed=5)
    pred = p.argmax(axis=1)
    m = classification_metrics(y, p, iba_alpha=0.3, iba_squared=True)
    iba = make_index_balanced_accuracy(alpha=0.3, squared=True)(geometric_mean_score)
    assert m["iba"] == pytest.approx(iba(y, pred, average="binary", pos_label=1))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_fast_confusion_metrics_match_the_sklearn_path(k):
    """The bootstrap's vectorised path gives exactly the metrics.json values."""
    y, p = _predictions(150, k, seed=10 + k, skew=0.6)
    rng = np.random.default_rng(0)
    for _ in range(5):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) < k:
            continue
        m = classification_metrics(y[idx], p[idx])
        fast = confusion_metrics(np.array(m["confusion_matrix"]), minority=minority_index(y[idx], k))
        for key in set(HEADLINE_METRICS) - {"roc_auc"}:
            assert fast[key][0] == pytest.approx(m[key], abs=1e-12), key


def test_auc_undefined_for_one_class_and_sigmoid_column():
    y = np.zeros(6, int)
    p = np.tile([0.8, 0.2], (6, 1))
    m = classification_metrics(y, p)
    assert m["roc_auc"] is None and m["accuracy"] == 1.0
    m1 = classification_metrics([0, 1, 1, 0], [0.2, 0.9, 0.6, 0.4])  # one column: P(positive)
    assert m1["roc_auc"] == 1.0 and m1["class_names"] == ["0", "1"]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="sum"):
        classification_metrics([0, 1], [[0.5, 0.9], [0.1, 0.2]])
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 2], [[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(ValueError, match="class names"):
        classification_metrics([0, 1], [[0.5, 0.5], [0.1, 0.9]], class_names=["a"])


def test_ece_of_perfectly_calibrated_data_is_near_zero():
    rng = np.random.default_rng(0)
    n = 200_000
    q = rng.uniform(0, 1, n)  # P(malignant); the truth is drawn with exactly this probability
    y = (rng.uniform(0, 1, n) < q).astype(int)
    p = np.stack([1 - q, q], axis=1)
    assert expected_calibration_error(y, p, n_bins=15) < 0.01
    # An overconfident model: always 0.99 sure, right 70 % of the time -> ECE = 0.29.
    conf = np.full(n, 0.99)
    pred_right = rng.uniform(0, 1, n) < 0.7
    y2 = np.where(pred_right, 1, 0)
    p2 = np.stack([1 - conf, conf], axis=1)
    assert expected_calibration_error(y2, p2) == pytest.approx(0.29, abs=0.01)


def test_reliability_curve_bins_by_hand():
    # Confidences 0.6, 0.6, 0.9, 0.9 in 2 bins (0, .5], (.5, 1] -> one bin, acc 3/4, conf 0.75.
    p = np.array([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.1, 0.9]])
    y = np.array([0, 0, 0, 1])
    curve = reliability_curve(y, p, n_bins=2)
    assert curve["count"] == [0, 4]
    assert curve["accuracy"] == [None, 0.75] and curve["confidence"][1] == pytest.approx(0.75)
    assert curve["ece"] == pytest.approx(0.0)
    curve4 = reliability_curve(y, p, n_bins=4)  # (.5,.75]: conf .6 acc .5; (.75,1]: conf .9 acc 1
    assert curve4["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.1)
    assert curve4["mce"] == pytest.approx(0.1)


def test_rates_of_an_absent_class_are_none_with_a_warning_not_imblearns_zero():
    # imblearn 0.14 gives specificity 0.0 WITHOUT a warning for four negatives all predicted
    # right (it should be 4 / 4), and 0.0 with a warning for a rate it cannot divide.
    from sklearn.exceptions import UndefinedMetricWarning

    from breastcam.evaluate.metrics import confusion_metrics
    from breastcam.evaluate.paper_metrics import paper_block

    negatives = np.tile([0.9, 0.1], (4, 1))
    with pytest.warns(UndefinedMetricWarning, match="sensitivity.*class\\(es\\) \\['1'\\]"):
        m = classification_metrics(np.zeros(4, int), negatives)
    assert m["specificity"] == 1.0
    assert m["sensitivity"] is None and m["g_mean"] is None and m["iba"] is None
    with pytest.warns(UndefinedMetricWarning, match="specificity"):
        m = classification_metrics(np.ones(4, int), negatives[:, ::-1])
    assert m["sensitivity"] == 1.0 and m["specificity"] is None
    with pytest.warns(UndefinedMetricWarning):  # three classes, class 2 absent
        m3 = classification_metrics([0, 0, 1, 1], np.eye(3)[[0, 0, 1, 1]] * 0.8 + 0.2 / 3)
    assert m3["sensitivity"] is None and m3["g_mean"] is None and m3["accuracy"] == 1.0
    fast = confusion_metrics(np.array([[4, 0], [0, 0]]), minority=0)  # the bootstrap's path
    assert fast["specificity"][0] == 1.0 and np.isnan(fast["sensitivity"][0])
    assert np.isnan(fast["g_mean"][0]) and np.isnan(fast["iba"][0])
    block = paper_block([[4, 0], [0, 0]], ["binary"])["binary"]["metrics"]
    assert block["specificity"] == 1.0 and block["sensitivity"] is None and block["g_mean"] is None
    assert block["ppv"] == 0.0  # precision-like: sklearn's zero_division=0, as documented
