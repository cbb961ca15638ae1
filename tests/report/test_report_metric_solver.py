"""The metric-definition solver on hand-worked rows, and on the papers' own rows."""

from __future__ import annotations

import numpy as np

import pytest

from breastcam.evaluate.paper_metrics import Definition, definition_metrics, parse_definition
from breastcam.report import metric_solver as ms

TEST_20 = ms.TestSet(2, (0.2, 0.8), n=20, source="hand-worked")


def _bounds(**printed):
    """Bounds of values printed to 3 decimals."""
    return {m: (v, v - 0.0005 - ms.EPS, v + 0.0005 + ms.EPS) for m, v in printed.items()}


def test_printed_half_unit():
    assert ms.printed_half_unit("0.883", "accuracy", "fraction") == pytest.approx(0.0005)
    assert ms.printed_half_unit("95.75", "accuracy", "percent") == pytest.approx(0.00005)
    assert ms.printed_half_unit("0.743/0.77", "f1_weighted", "fraction") == pytest.approx(0.005)
    assert ms.printed_half_unit("0.743/0.77", "f1_minority", "fraction") == pytest.approx(0.0005)


def test_integer_search_finds_the_hand_matrix_and_proves_misses():
    # [[TN=3, FP=1], [FN=2, TP=14]] (tests/evaluate/test_evaluate_paper_metrics.py): accuracy
    # .850, binary sensitivity .875, specificity .750, G .810, IBA .820.
    bounds = _bounds(accuracy=0.850, sensitivity=0.875, specificity=0.750, g_mean=0.810, iba=0.820)
    fit = ms.check_integer(bounds, Definition("binary", "binary"), TEST_20)
    assert fit.fits is True and fit.method == "integer"
    got = definition_metrics(fit.witness, Definition("binary", "binary"))
    for m, (_, lo, hi) in bounds.items():
        assert lo <= got[m][0] <= hi
    # macro sensitivity = macro specificity for two classes: .875 vs .750 is impossible
    assert ms.check_integer(bounds, Definition("macro", "macro"), TEST_20).fits is False
    # imblearn's default IBA equals G-mean for two classes: .820 vs .810 is impossible
    assert ms.check_integer(bounds, Definition("binary", "multiclass"), TEST_20).fits is False


def test_mean_over_runs_explains_gmean_below_sensitivity_and_specificity():
    # Two runs on 10 + 10 images: (sens 1.0, spec 0.6) and (sens 0.6, spec 1.0). Each has
    # G = sqrt(0.6) = .7746; the means are sens .800, spec .800, G .775. One matrix with
    # sens = spec = .8 has G = .8, so no single run fits; the mean of the two runs does (Jensen).
    test = ms.TestSet(2, (0.5, 0.5), n=20)
    bounds = _bounds(sensitivity=0.800, specificity=0.800, g_mean=0.775)
    assert ms.check_integer(bounds, Definition("binary", "binary"), test).fits is False
    fit = ms.check_hull(bounds, Definition("binary", "binary", over_runs=True), test)
    assert fit.fits is True and abs(sum(fit.witness["weights"]) - 1.0) < 1e-3  # weights rounded to 4 decimals


def test_rate_search_for_three_classes():
    # [[4, 1, 0], [1, 3, 1], [0, 2, 8]]: macro sensitivity .733, specificity .878, G (recalls)
    # .727, accuracy .750 (hand-worked in tests/evaluate/test_evaluate_paper_metrics.py).
    test = ms.TestSet(3, (0.25, 0.25, 0.5))
    bounds = _bounds(accuracy=0.750, sensitivity=0.733, specificity=0.878, g_mean=0.727)
    fit = ms.check_rates(bounds, Definition("macro", "multiclass"), test)
    assert fit.fits is True
    got = definition_metrics(fit.witness, Definition("macro", "multiclass"))
    assert all(lo <= got[m][0] <= hi for m, (_, lo, hi) in bounds.items())
    # micro specificity of 3 classes is 1 - (1 - accuracy) / 2 = .875, not .878
    assert ms.check_rates(bounds, Definition("micro", "multiclass"), test).fits is False


def test_papers_dala_40x_fits_no_single_matrix():
    # Issue 11: DALAResNet50 40X prints G-mean .980 (Table VII) under sensitivity .985 and
    # specificity .984 (Table XI) -- no confusion matrix of the 599 test images does that.
    group = next(g for g in ms.TABLE_GROUPS if g.label == "001 Tables VII + XI without F1")
    row = next(r for r in ms.observed_rows(group)
               if r["model"] == "dalaresnet50" and r["subset"] == "40")
    test = ms.test_set("A", "breakhis", "40")
    assert test.n == 599
    fits = ms.check_row_all(row["bounds"], ms.candidate_definitions(2, over_runs=False), test)
    assert not any(f.fits for f in fits)


@pytest.mark.slow  # about 5 minutes on a loaded 2-core machine
def test_paper_c_and_b_rows():
    results = ms.solve([g for g in ms.TABLE_GROUPS if g.paper in ("B", "C")])
    assert set(results["paper"]) == {"B", "C"}
    chosen = ms.choose(results)
    from breastcam.evaluate.paper_metrics import PAPER_DEFINITIONS

    for paper in ("B", "C"):
        assert chosen[f"{paper}/binary"]["definition"] == PAPER_DEFINITIONS[paper]["binary"]
    # 003 Table 2's F1 at 100x (90.2) is not 2PR/(P+R) of its precision 96.75 and recall 93.28
    bad = ms.inconsistent_rows(results)
    assert ("003 Table 2", "breakhis", "100", "ernet50") in set(map(tuple, bad[["group", *ms.ROW_KEY]].values))
    assert parse_definition(chosen["C/binary"]["definition"]).average == "binary"


@pytest.mark.slow  # about 2 minutes on a loaded 2-core machine (Table XI has no accuracy to prune by)
def test_paper_a_binary_choice_from_its_own_rows(monkeypatch):
    # The DALAResNet50 and ResNet50 rows of Table XI and of Table 6 without its F1 pairs:
    # Table XI needs the binary (positive-class) rates; Table 6 prints IBA = G-mean, which
    # imblearn's default call gives (G-mean of the recalls, dominance 0 for two classes).
    from breastcam.evaluate.paper_metrics import PAPER_DEFINITIONS

    keep = {"dalaresnet50", "resnet50"}
    original = ms.observed_rows
    monkeypatch.setattr(ms, "observed_rows",
                        lambda g: [r for r in original(g) if r["model"] in keep])
    groups = [g for g in ms.TABLE_GROUPS if g.label in ("001 Table XI", "000 Table 6 without F1")]
    results = ms.solve(groups)
    results = results[~results["definition"].str.startswith("mean over runs")]
    assert ms.choose(results)["A/binary"]["definition"] == PAPER_DEFINITIONS["A"]["binary"]


def test_inconsistent_keys_for_the_report():
    import pandas as pd

    from breastcam.report.published import load_published
    from breastcam.report.tables import INCONSISTENT

    both = pd.concat([load_published("000", 6), load_published("001", 11)], ignore_index=True)
    rows = both[(both["model"] == "dalaresnet50") & (both["subset"] == "40")]
    why = ms.inconsistent_keys(rows, "A")[("breakhis", "40", "dalaresnet50")]
    # A miss of the integer search says what it covered: every n the split could give.
    assert why == f"{INCONSISTENT} (no integer confusion matrix for n in [597, 601] (printed 599 +- 2), " \
                  "positives within 3 of each n's stratified count)"
    # Table XI alone is one binary matrix of the 599 test images: nothing to flag
    alone = rows[rows["table"] == "XI"]
    assert ms.inconsistent_keys(alone, "A") == {}


def test_rate_search_tells_the_class_mean_gmean_from_imblearns():
    # [[6, 2, 2], [2, 6, 2], [2, 2, 6]]: every recall .6, every one-vs-rest specificity 16/20 = .8.
    # imblearn's G-mean (geometric mean of recalls) is .600; the mean over classes of
    # sqrt(sens_k spec_k) is sqrt(.48) = .693; IBA of the class mean (1 + .1 (.6 - .8)) .693 = .679.
    cm = [[6, 2, 2], [2, 6, 2], [2, 2, 6]]
    right = Definition("macro", "classmean")
    got = definition_metrics(cm, right)
    assert got["g_mean"][0] == pytest.approx(0.48 ** 0.5) and got["iba"][0] == pytest.approx(0.98 * 0.48 ** 0.5)
    assert right in ms.candidate_definitions(3) and right not in ms.candidate_definitions(2)
    test = ms.TestSet(3, (1 / 3, 1 / 3, 1 / 3))
    bounds = _bounds(accuracy=0.600, sensitivity=0.600, specificity=0.800, g_mean=0.693, iba=0.679)
    fit = ms.check_rates(bounds, right, test)
    assert fit.fits is True
    witness = definition_metrics(fit.witness, right)
    assert all(lo <= witness[m][0] <= hi for m, (_, lo, hi) in bounds.items())
    # the geometric mean of recalls never exceeds their mean (= macro sensitivity .600): .693
    # is out of reach of imblearn's G-mean, whatever the matrix
    assert ms.check_rates(bounds, Definition("macro", "multiclass"), test, starts=2).fits is False


def test_paper_a_multiclass_choice_fits_its_bach_table_xii_row():
    # BACH, SE-ResNet50, Table XII: sensitivity .771, specificity .768, PPV .909, NPV .527.
    # Normal against the three other classes merged gives a matrix (PPV high, NPV low: three
    # quarters of the images are "abnormal"); one-vs-rest macro averaging of 4 balanced classes
    # cannot (its PPV and NPV average near the sensitivity and specificity, not .909 / .527).
    from breastcam.evaluate.paper_metrics import PAPER_DEFINITIONS

    group = next(g for g in ms.TABLE_GROUPS if g.label == "001 Table XII")
    row = next(r for r in ms.observed_rows(group)
               if r["model"] == "seresnet50" and r["dataset"] == "bach")
    test = ms.test_set("A", "bach", "all")
    chosen = parse_definition(PAPER_DEFINITIONS["A"]["multiclass"])
    assert chosen.average == "abnormal"
    fit = ms.check_rates(row["bounds"], chosen, test)
    assert fit.fits is True
    got = definition_metrics(fit.witness, chosen)
    assert all(lo <= got[m][0] <= hi for m, (_, lo, hi) in row["bounds"].items())
    assert ms.check_rates(row["bounds"], Definition("macro", "macro"), test, starts=2).fits is False


def test_a_400x_table_xi_row_fits_at_the_per_class_floor_of_the_split():
    """001 Table XI, DenseNet121 at 400X: no matrix of 546 images reproduces it, but 545 does
    (30 % of 588 benign and 1,232 malignant, each floored: 176 + 369), TP 288 FN 81 TN 137 FP 39."""
    from breastcam.report.published import load_published

    xi = load_published("001", 11)
    row = xi[(xi["model"] == "densenet121") & (xi["subset"].astype(str) == "400")]
    (observed,) = ms.rows_of(row)
    test = ms.test_set("A", "breakhis", "400")
    assert test.n == 546 and 545 in test.sizes()
    definition = ms.candidate_definitions(2, over_runs=False)[0]
    fit = ms.check_integer(observed["bounds"], definition, test)
    assert fit.fits and int(np.sum(fit.witness)) == 545
