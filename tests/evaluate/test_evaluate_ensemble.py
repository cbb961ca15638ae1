"""Deep ensembles: the mean of the members' probabilities, the entropy split into aleatoric and
epistemic parts on hand-made cases, and a clear refusal for members on different test images."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from breastcam.errors import DataError
from breastcam.evaluate.ensemble import ensemble_frame, ensemble_metrics


def _frame(probs, truth=(0, 1), paths=("a.png", "b.png")):
    probs = np.asarray(probs, float)
    return pd.DataFrame({"path": list(paths), "truth_index": list(truth),
                         "prob_benign": probs[:, 0], "prob_malignant": probs[:, 1]})


def test_two_members_that_disagree_have_epistemic_uncertainty_and_agreeing_ones_none():
    # image a: members say (1, 0) and (0, 1): the mean (.5, .5) has entropy ln 2, each member 0
    # image b: both say (.5, .5): entropy ln 2, all of it aleatoric
    m1 = _frame([[1.0, 0.0], [0.5, 0.5]])
    m2 = _frame([[0.0, 1.0], [0.5, 0.5]])
    ens = ensemble_frame([m1, m2])
    np.testing.assert_allclose(ens[["prob_benign", "prob_malignant"]], [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(ens["uncertainty"], [math.log(2)] * 2, atol=1e-9)
    np.testing.assert_allclose(ens["epistemic"], [math.log(2), 0.0], atol=1e-9)
    np.testing.assert_allclose(ens["aleatoric"], [0.0, math.log(2)], atol=1e-9)
    assert (ens["members"] == 2).all()


def test_the_ensemble_can_beat_its_members_and_metrics_carry_intervals():
    # each member is right on one image and confidently wrong on the other; the mean is right on both
    m1 = _frame([[0.9, 0.1], [0.6, 0.4]])
    m2 = _frame([[0.4, 0.6], [0.1, 0.9]])
    ens = ensemble_frame([m1, m2])
    m = ensemble_metrics(ens, [m1, m2], n_bootstrap=50)
    assert m["accuracy"] == 1.0 and m["members_mean"]["accuracy"] == 0.5
    assert m["nll"] < m["members_mean"]["nll"]
    assert set(m["ci"]) >= {"accuracy", "ece", "nll", "aurc"} and m["members"] == 2


def test_members_on_different_images_are_refused_naming_them():
    with pytest.raises(DataError, match="fold_2 predicted other test images than fold_1"):
        ensemble_frame([_frame([[1, 0], [0, 1]]), _frame([[1, 0], [0, 1]], paths=("c.png", "d.png"))],
                       ["fold_1", "fold_2"])
    with pytest.raises(DataError, match="at least 2"):
        ensemble_frame([_frame([[1, 0], [0, 1]])])
