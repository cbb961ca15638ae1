"""comparison_table joins published and reproduced numbers; to_markdown writes pipe tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from breastcam.report.published import load_published
from breastcam.report.tables import (
    COMPARISON_COLUMNS,
    comparison_table,
    format_cell,
    normalise_subset,
    to_markdown,
)


def _published():
    return pd.DataFrame({
        "paper": ["000", "000", "001"],
        "table": ["6", "6", "VII"],
        "dataset": ["breakhis"] * 3,
        "subset": ["40", "100", "40"],
        "model": ["dalaresnet50"] * 3,
        "metric": ["accuracy"] * 3,
        "value": [0.985, 0.987, 0.985],
        "printed": ["0.985", "0.987", "0.985"],
    })


def test_join_on_dataset_subset_model_metric():
    reproduced = pd.DataFrame({
        "dataset": ["breakhis", "breakhis", "breakhis"],
        "subset": [40, 40, "100X"],
        "model": ["dalaresnet50"] * 3,
        "metric": ["accuracy"] * 3,
        "protocol": ["dala", "patient", "dala"],
        "value": [0.97, 0.84, 0.99],
        "ci_low": [0.95, 0.80, np.nan],
        "ci_high": [0.99, 0.88, np.nan],
    })
    out = comparison_table(_published(), reproduced)
    assert list(out.columns) == COMPARISON_COLUMNS
    # the number printed by both Table 6 and Table VII counts once, sourced to both
    assert len(out) == 3
    first = out.iloc[0]
    assert (first.subset, first.protocol, first.published, first.reproduced) == ("40", "dala", 0.985, 0.97)
    assert first.source == "paper 000 Table 6; paper 001 Table VII"
    assert first.difference == pytest.approx(0.97 - 0.985)
    assert bool(first.published_in_ci) is True
    patient = out.iloc[1]
    assert (patient.protocol, patient.reproduced, bool(patient.published_in_ci)) == ("patient", 0.84, False)
    third = out.iloc[2]
    assert third.subset == "100" and third.reproduced == 0.99 and pd.isna(third.published_in_ci)


def test_rows_on_one_side_only_are_kept():
    reproduced = pd.DataFrame({"dataset": ["breakhis"], "subset": ["40"], "model": ["dalaresnet50"],
                               "metric": ["ece"], "mean": [0.03]})
    out = comparison_table(_published(), reproduced)
    assert len(out) == 3
    assert out["reproduced"].isna().sum() == 2  # published, not reproduced (yet)
    extra = out[out.metric == "ece"].iloc[0]
    assert np.isnan(extra.published) and extra.reproduced == 0.03 and np.isnan(extra.difference)
    # grouped by subset; within one, published metrics before reproduced-only ones
    assert list(zip(out.subset, out.metric)) == [("40", "accuracy"), ("40", "ece"), ("100", "accuracy")]


def test_rows_group_by_subset_in_numeric_order():
    pub = load_published("000", 6)
    out = comparison_table(pub, pub[["dataset", "subset", "model", "metric", "value"]])
    assert list(dict.fromkeys(out.subset)) == ["40", "100", "200", "400"]
    first = out[out.subset == "40"]
    assert list(dict.fromkeys(first.model))[:2] == ["seresnet50", "densenet121"]  # the paper's order
    assert list(first.metric[:5]) == ["accuracy", "f1_minority", "f1_weighted", "iba", "g_mean"]
    assert (out.difference == 0).all() and out.published_in_ci.isna().all()


def test_published_csv_rows_compare_directly():
    pub = load_published("003", 2)
    rep = pub[["dataset", "subset", "model", "metric"]].copy()
    rep["value"] = pub["value"] + 0.01
    out = comparison_table(pub, rep)
    assert len(out) == len(pub)
    assert np.allclose(out["difference"], 0.01)
    assert out.iloc[0].printed == "91.45"  # percent as printed, published as a fraction
    assert out.iloc[0].published == pytest.approx(0.9145)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="metric"):
        comparison_table(_published().drop(columns="metric"), _published())
    with pytest.raises(ValueError, match="value"):
        comparison_table(_published(), _published().drop(columns="value"))


@pytest.mark.parametrize("raw, expected", [(40, "40"), (40.0, "40"), ("40X", "40"), ("400x", "400"),
                                           (None, "all"), (np.nan, "all"), ("", "all"), ("all", "all")])
def test_normalise_subset(raw, expected):
    assert normalise_subset(raw) == expected


def test_format_cell():
    assert [format_cell(v) for v in (0.985, 0.9800, 2133.02, 25611842.0, 3, np.nan, None, -0.00001, True)] == [
        "0.985", "0.98", "2133.02", "25611842", "3", "", "", "0", "yes"]


def test_to_markdown_without_tabulate():
    df = pd.DataFrame({"model": ["dala|resnet", "vgg16"], "accuracy": [0.985, np.nan], "n": [599, 624]})
    assert to_markdown(df) == (
        "| model | accuracy | n |\n"
        "|---|---:|---:|\n"
        "| dala\\|resnet | 0.985 | 599 |\n"
        "| vgg16 |  | 624 |\n"
    )
    assert to_markdown(df, columns=["n", "model"]).splitlines()[0] == "| n | model |"


def test_like_with_like_and_intervals_that_cannot_judge():
    reproduced = pd.DataFrame({
        "dataset": ["breakhis"] * 3, "subset": ["40", "100", "40"],
        "model": ["dalaresnet50"] * 3, "metric": ["accuracy"] * 3,
        "protocol": ["dala", "dala", "patient"],
        "value": [0.90, 0.95, 0.80], "paper_value": [0.98, np.nan, 0.81],
        # 40/dala: a 2-run t-interval (not decisive); 100: the old unclipped [-1.46, 1.71];
        # 40/patient: a decisive bootstrap interval
        "ci_low": [0.0, -1.4633, 0.79], "ci_high": [1.0, 1.7133, 0.99],
        "ci_method": ["t-interval of the mean of 2 runs (fewer than 3 runs: ...)", "",
                      "percentile bootstrap"],
        "ci_decisive": [False, True, True],
    })
    out = comparison_table(_published(), reproduced, inconsistent=[("breakhis", "40X", "dalaresnet50")])
    rows = {(r.subset, r.protocol): r for r in out.itertuples()}
    dala40 = rows[("40", "dala")]
    # the difference compares like with like: the paper-defined value where there is one
    assert dala40.difference == pytest.approx(0.98 - 0.985)
    assert dala40.reproduced == 0.90 and dala40.paper_definition == 0.98
    assert pd.isna(dala40.published_in_ci)  # a 2-run interval does not judge
    assert pd.isna(rows[("100", "dala")].published_in_ci)  # an interval outside [0, 1] neither
    assert rows[("100", "dala")].difference == pytest.approx(0.95 - 0.987)
    assert bool(rows[("40", "patient")].published_in_ci) is True
    assert dala40.paper_check == "internally inconsistent in the paper"
    assert rows[("100", "dala")].paper_check == ""
