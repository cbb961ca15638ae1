"""Temperature scaling, split-conformal sets and selective risk against values worked out by hand
or in closed form, and conformal coverage on a large exchangeable synthetic set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from breastcam.errors import UsageError
from breastcam.evaluate import trust


def test_temperature_recovers_the_closed_form_optimum():
    """Two classes, logits +-z: with a fraction q of images right, the NLL of softmax(2z/T) is
    minimised where sigmoid(2z/T) = q, i.e. T* = 2z / logit(q)."""
    z, q, n = 2.0, 0.8, 1000
    p_right = 1 / (1 + math.exp(-2 * z))
    y_prob = np.tile([[1 - p_right, p_right]], (n, 1))  # every image says class 1 with p(2z)
    y_true = np.ones(n, int)
    y_true[: round(n * (1 - q))] = 0
    expected = 2 * z / math.log(q / (1 - q))
    t = trust.fit_temperature(y_true, y_prob)
    np.testing.assert_allclose(t, expected, rtol=1e-3)
    np.testing.assert_allclose(trust.apply_temperature(y_prob, t)[0, 1], q, atol=1e-4)


def test_temperature_one_leaves_probabilities_unchanged_and_inverts():
    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.9, 0.05]])
    np.testing.assert_allclose(trust.apply_temperature(p, 1.0), p, atol=1e-12)
    np.testing.assert_allclose(trust.apply_temperature(trust.apply_temperature(p, 2.5), 1 / 2.5), p, atol=1e-9)


def test_vector_scaling_recovers_the_map_the_labels_were_drawn_from():
    """Labels drawn from softmax(w* log p + b*): the fit finds w* and b* (b up to a constant,
    which softmax ignores) within sampling error, and lowers the NLL to that of the true map."""
    rng = np.random.default_rng(0)
    n, k = 20000, 3
    logits = rng.normal(size=(n, k)) * 1.5
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    w_true, b_true = np.array([0.5, 0.8, 1.4]), np.array([0.3, -0.2, -0.1])
    truth = trust.apply_vector_scaling(p, w_true, b_true)
    y = (truth.cumsum(1) > rng.random((n, 1))).argmax(1)
    fitted = trust.fit_vector_scaling(y, p)
    # sampling error at n = 20,000 is about 0.05 (seen over seeds); the identity start is 0.4 off
    np.testing.assert_allclose(fitted["scale"], w_true, atol=0.1)
    b = np.asarray(fitted["bias"])
    np.testing.assert_allclose(b - b.mean(), b_true - b_true.mean(), atol=0.1)
    served = trust.apply_calibration(p, {"vector": fitted})
    assert trust.nll(y, served) <= trust.nll(y, truth) + 1e-3 < trust.nll(y, p)


def test_vector_scaling_with_equal_scales_and_no_bias_is_a_temperature():
    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.9, 0.05]])
    np.testing.assert_allclose(trust.apply_vector_scaling(p, [1 / 2.5] * 3, [0, 0, 0]),
                               trust.apply_temperature(p, 2.5), atol=1e-12)
    np.testing.assert_allclose(trust.apply_calibration(p, {"temperature": 2.5}),
                               trust.apply_temperature(p, 2.5), atol=1e-12)
    np.testing.assert_allclose(trust.apply_calibration(p, None), p)


@pytest.mark.parametrize("score", ["lac", "aps"])
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_conformal_coverage_holds_on_exchangeable_data(score, alpha):
    rng = np.random.default_rng(0)
    k, n = 4, 20000
    logits = rng.normal(size=(n, k)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])  # labels drawn from the model itself
    cal, test = np.arange(n) < n // 2, np.arange(n) >= n // 2
    threshold = trust.conformal_threshold(y[cal], p[cal], alpha, score)
    sets = trust.prediction_sets(p[test], threshold, score)
    coverage = sets[np.arange(test.sum()), y[test]].mean()
    assert coverage >= 1 - alpha - 0.01  # 10,000 test images: sampling error well under 1 %
    assert sets.sum(1).mean() < k  # the sets say something


def test_conformal_sets_on_a_hand_made_case():
    p = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    y = np.array([0, 1, 1, 2])
    # LAC scores of the truth: .4 .6 .3 .3; alpha 0.25 -> rank ceil(5 x .75) = 4 of 4 -> .6
    assert trust.conformal_threshold(y, p, 0.25, "lac") == pytest.approx(0.6)
    sets = trust.prediction_sets(p, 0.6, "lac")
    assert sets.tolist() == [[True, False, False], [True, True, False], [False, True, False], [False, False, True]]
    # APS scores of the truth: .6, .9, .7, .7
    assert trust.conformal_threshold(y, p, 0.25, "aps") == pytest.approx(0.9)
    assert math.isinf(trust.conformal_threshold(y, p, 0.1, "lac"))  # 4 images cannot give 90 %


def test_alpha_and_score_are_checked():
    with pytest.raises(UsageError, match="alpha"):
        trust.conformal_threshold([0], [[1.0, 0.0]], 1.5)
    with pytest.raises(UsageError, match="score"):
        trust.conformity_scores([[1.0, 0.0]], "raps")


def test_aurc_on_hand_made_orders():
    # Confidence order: right, right, wrong, right -> risks 0, 0, 1/3, 1/4
    p = np.array([[0.05, 0.95], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    y = np.array([1, 1, 0, 1])
    assert trust.aurc(y, p) == pytest.approx((0 + 0 + 1 / 3 + 1 / 4) / 4)
    # Best order puts the one error last: risks 0, 0, 0, 1/4
    assert trust.e_aurc(y, p) == pytest.approx((1 / 3 + 1 / 4) / 4 - (1 / 4) / 4)
    perfect = np.array([1, 1, 1, 0])  # the least confident is the error
    assert trust.e_aurc(perfect, p) == pytest.approx(0.0)
    sel = trust.selective_metrics(y, p, coverages=(0.5, 0.75))
    assert sel["50"]["accuracy"] == 1.0 and sel["75"]["accuracy"] == pytest.approx(2 / 3)


def test_entropy():
    np.testing.assert_allclose(trust.entropy([[0.5, 0.5], [1.0, 0.0]]), [math.log(2), 0.0], atol=1e-9)


def test_lac_sets_equal_mapies_for_the_same_scores():
    """MAPIE (test-only dependency) on the same probabilities gives the same LAC sets. (Its APS
    differs by design: breastcam's APS set is {y : score <= threshold}, Angelopoulos & Bates'
    non-randomised form; MAPIE's include_last_label variants add or drop the crossing class.)"""
    mapie = pytest.importorskip("mapie.classification")
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Fixed(ClassifierMixin, BaseEstimator):  # predict_proba = the table's row X
        def __init__(self, table=None):
            self.table = table

        def fit(self, X, y):
            self.classes_ = np.arange(self.table.shape[1])
            return self

        def predict_proba(self, X):
            return self.table[np.asarray(X).reshape(-1).astype(int)]

        def predict(self, X):
            return self.predict_proba(X).argmax(1)

    rng = np.random.default_rng(0)
    n, k = 4000, 3
    logits = rng.normal(size=(n, k)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    X = np.arange(n).reshape(-1, 1)
    conformal = mapie.SplitConformalClassifier(estimator=Fixed(p).fit(X, y), confidence_level=0.9,
                                               conformity_score="lac", prefit=True)
    conformal.conformalize(X[: n // 2], y[: n // 2])
    _, theirs = conformal.predict_set(X[n // 2:])
    ours = trust.prediction_sets(p[n // 2:], trust.conformal_threshold(y[: n // 2], p[: n // 2], 0.1, "lac"))
    assert (theirs[:, :, 0] == ours).all()
