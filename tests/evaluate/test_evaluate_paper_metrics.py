"""Paper metric definitions against hand-worked confusion matrices and imbalanced-learn."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.metrics import geometric_mean_score, make_index_balanced_accuracy, sensitivity_specificity_support

from breastcam.evaluate.paper_metrics import (
    Definition,
    candidate_definitions,
    definition_metrics,
    paper_block,
    parse_definition,
)

TOL = 1e-6  # hand values are written to 6 decimals

# Binary, 4 benign (class 0) and 16 malignant (class 1, positive), rows = truth:
#   [[TN=3, FP=1], [FN=2, TP=14]]
# recall benign 3/4 = .75, recall malignant 14/16 = .875, accuracy 17/20 = .85
# binary: sens .875, spec .75, PPV 14/15 = .933333, NPV 3/5 = .6
#         G = sqrt(.875 * .75) = .810093, IBA = (1 + .1 * (.875 - .75)) * G = 1.0125 * G = .820219
#         IBA squared = 1.0125 * .65625 = .664453
# one-vs-rest specificity: benign (negatives = malignant) 14/16 = .875, malignant 3/4 = .75
# macro: sens = spec = (.75 + .875) / 2 = .8125 -> G = .8125, dominance 0 -> IBA = .8125
# weighted (4, 16): sens = (4*.75 + 16*.875)/20 = .85 (= accuracy),
#                   spec = (4*.875 + 16*.75)/20 = .775, G = sqrt(.85 * .775) = .811634,
#                   IBA = (1 + .1 * .075) * G = 1.0075 * .811634 = .817721
# micro: sens = 17/20 = .85; spec = (14 + 3) / (16 + 4) = .85
# multiclass G (per-class recalls) = sqrt(.75 * .875) = .810093; IBA dominance macro = 0 -> .810093
# F1 benign = 6 / (6 + 1 + 2) = .666667 (the minority), malignant 28/31 = .903226,
# weighted = (4 * .666667 + 16 * .903226) / 20 = .855914
BINARY = np.array([[3, 1], [2, 14]])
BINARY_HAND = {
    "binary": dict(accuracy=.85, sensitivity=.875, specificity=.75, ppv=.933333, npv=.6,
                   g_mean=.810093, iba=.820219, f1_minority=.666667, f1_weighted=.855914,
                   f1_positive=.903226),
    "macro": dict(sensitivity=.8125, specificity=.8125, g_mean=.8125, iba=.8125),
    "weighted": dict(sensitivity=.85, specificity=.775, g_mean=.811634, iba=.817721),
    "micro": dict(sensitivity=.85, specificity=.85),
    "binary, G:multiclass": dict(g_mean=.810093, iba=.810093),
    "binary, IBA squared": dict(iba=.664453),
}

# Three classes (Normal 5, Benign 5, Cancer 10), rows = truth:
#   [[4, 1, 0], [1, 3, 1], [0, 2, 8]]
# accuracy 15/20 = .75; recalls .8, .6, .8; column sums 5, 6, 9 -> FP 1, 3, 1; FN 1, 2, 2;
# TN = 20 - TP - FP - FN = 14, 12, 9 -> specificity 14/15, 12/15, 9/10 = .933333, .8, .9
# macro: sens .733333, spec .877778, G = sqrt(.733333 * .877778) = .802312,
#        IBA = (1 + .1 * (-.144444)) * G = .790723
# multiclass G = (.8 * .6 * .8) ** (1/3) = .726848, IBA (macro dominance) = .985556 * G = .716349
# abnormal (Normal vs Benign+Cancer merged): [[4, 1], [1, 14]] -> sens 14/15 = .933333,
#        spec 4/5 = .8, PPV 14/15, NPV 4/5
THREE = np.array([[4, 1, 0], [1, 3, 1], [0, 2, 8]])
THREE_HAND = {
    "macro": dict(accuracy=.75, sensitivity=.733333, specificity=.877778, g_mean=.802312,
                  iba=.790723),
    "macro, G:multiclass": dict(g_mean=.726848, iba=.716349),
    "abnormal": dict(sensitivity=.933333, specificity=.8, ppv=.933333, npv=.8),
}


@pytest.mark.parametrize("cm, hand", [(BINARY, BINARY_HAND), (THREE, THREE_HAND)])
def test_definitions_match_hand_worked_values(cm, hand):
    for name, expected in hand.items():
        got = definition_metrics(cm, parse_definition(name))
        for metric, value in expected.items():
            assert got[metric][0] == pytest.approx(value, abs=TOL), (name, metric)


def _labels(cm):
    y_true, y_pred = [], []
    for t, row in enumerate(cm):
        for p, n in enumerate(row):
            y_true += [t] * int(n)
            y_pred += [p] * int(n)
    return np.array(y_true), np.array(y_pred)


@pytest.mark.parametrize("cm", [BINARY, THREE])
@pytest.mark.parametrize("average", ["macro", "weighted", "micro", "multiclass"])
@pytest.mark.parametrize("squared", [False, True])
def test_gmean_and_iba_are_imblearns(cm, average, squared):
    y, p = _labels(cm)
    own = "macro" if average == "multiclass" else average
    d = Definition(own, average, squared)
    got = definition_metrics(cm, d)
    iba = make_index_balanced_accuracy(alpha=0.1, squared=squared)(geometric_mean_score)
    assert got["g_mean"][0] == pytest.approx(geometric_mean_score(y, p, average=average), abs=1e-12)
    assert got["iba"][0] == pytest.approx(iba(y, p, average=average), abs=1e-12)
    if average != "multiclass":
        sens, spec, _ = sensitivity_specificity_support(y, p, average=average)
        assert got["sensitivity"][0] == pytest.approx(sens, abs=1e-12)
        assert got["specificity"][0] == pytest.approx(spec, abs=1e-12)


def test_binary_default_imblearn_iba_equals_gmean():
    # imblearn's default call (average='multiclass') takes the IBA dominance macro-averaged,
    # which is 0 for two classes: IBA = G-mean exactly (breastcam's own binary IBA is not).
    got = definition_metrics(BINARY, Definition("binary", "multiclass"))
    assert got["iba"][0] == pytest.approx(got["g_mean"][0], abs=1e-12)
    own = definition_metrics(BINARY, Definition("binary", "binary"))
    assert own["iba"][0] > own["g_mean"][0] + 0.005


def test_names_round_trip_and_candidates():
    for k in (2, 3):
        defs = candidate_definitions(k)
        assert len({d.name for d in defs}) == len(defs)
        assert all(parse_definition(d.name) == d for d in defs)
    assert not any(d.average == "abnormal" for d in candidate_definitions(2))
    with pytest.raises(ValueError, match="unknown part"):
        parse_definition("binary, squared")
    with pytest.raises(ValueError, match="needs K > 2"):
        definition_metrics(BINARY, Definition("abnormal", "abnormal"))


def test_paper_block_holds_each_definition():
    block = paper_block(BINARY.tolist(), ["binary", "mean over runs of [weighted]"])
    assert set(block) == {"binary", "mean over runs of [weighted]"}
    assert block["binary"]["metrics"]["g_mean"] == pytest.approx(.810093, abs=TOL)
    # one run: the mean over runs is the run's own value
    assert block["mean over runs of [weighted]"]["metrics"]["specificity"] == pytest.approx(.775, abs=TOL)
    assert "imblearn" in block["binary"]["description"]


def test_bootstrap_gives_paper_definition_intervals():
    from breastcam.evaluate.statistics import bootstrap_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    p1 = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(scale=0.3, size=200), 0.01, 0.99)
    prob = np.stack([1 - p1, p1], axis=1)
    out = bootstrap_metrics(y, prob, n_bootstrap=200, seed=1, definitions=["binary", "macro"])
    assert set(out["paper_ci"]) == {"binary", "macro"}
    cm = np.zeros((2, 2))
    np.add.at(cm, (y, prob.argmax(axis=1)), 1)
    point = definition_metrics(cm, parse_definition("macro"))
    for metric, (low, high) in out["paper_ci"]["macro"].items():
        assert 0.0 <= low <= high <= 1.0
        assert low - 1e-9 <= point[metric][0] <= high + 1e-9, metric
    # the binary reading's G-mean interval is the same resamples as breastcam's own g_mean
    assert out["paper_ci"]["binary"]["g_mean"] == pytest.approx(out["ci"]["g_mean"], abs=1e-12)
