"""The papers' published numbers as typed into experiments/*/published/*.csv."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest

from breastcam.errors import ConfigError
from breastcam.report.published import (
    COLUMNS,
    REQUIRED_COLUMNS,
    UNITS,
    load_published,
    printed_value,
    published_tables,
    read_published_csv,
)

TABLES = published_tables()
# Every table the project transcribes (paper number, table number in arabic digits).
EXPECTED = {("000", t) for t in ("3", "4", "5", "6", "7")} | {
    ("001", t) for t in ("2", "4", "5", "6", "7", "8", "9", "10", "11", "12", "14")} | {
    ("003", "1"), ("003", "2"), ("004", "2"), ("004", "3")}
KEY = ["dataset", "subset", "model", "metric"]


def test_every_expected_table_is_there():
    assert {(t.paper, t.table) for t in TABLES} == EXPECTED


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.path.name)
def test_csv_parses_with_the_columns_and_values_agree_with_printed(table):
    df = read_published_csv(table.path)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) > 0
    assert (df["paper"] == table.paper).all()
    assert df["unit"].isin(UNITS).all(), set(df["unit"]) - set(UNITS)
    assert (df["printed"].str.strip() != "").all()
    for row in df.itertuples():
        expected = printed_value(row.printed, row.metric, row.unit)
        assert math.isclose(row.value, expected, rel_tol=1e-9, abs_tol=1e-12), row
    # one number per (dataset, subset, model, metric) within a table
    dupes = df[df.duplicated(KEY, keep=False)]
    assert dupes.empty, dupes[KEY]
    # fractions are fractions
    frac = df[df["unit"].isin(["fraction", "percent"])]
    assert frac["value"].between(0, 1).all()


@pytest.mark.parametrize(
    "paper, table, dataset, subset, model, metric, value, printed",
    [
        ("000", 6, "breakhis", "40", "dalaresnet50", "accuracy", 0.985, "0.985"),
        ("000", 6, "breakhis", "40", "dalaresnet50", "f1_minority", 0.970, "0.970/0.985"),
        ("000", 6, "breakhis", "40", "dalaresnet50", "f1_weighted", 0.985, "0.970/0.985"),
        ("000", 6, "breakhis", "400", "dalaresnet50", "accuracy", 0.943, "0.943"),
        ("000", 6, "breakhis", "100", "vgg16_inception", "f1_minority", 0.943, "0.943/0.971"),
        ("000", 6, "breakhis", "200", "dalaresnet50", "g_mean", 0.98, "0.98"),
        ("000", 7, "breakhis", "40", "dalaresnet50", "convergence_time", 2133.02, "2133.02"),
        ("000", 7, "breakhis", "all", "densenet121", "params", 9028970, "9028970"),
        ("000", 3, "breakhis", "400", "", "n_total", 1820, "1820"),
        ("000", 4, "breakhis", "all", "", "fraction_test", 0.30, "30%"),
        ("001", "II", "breakhis", "400", "dalaresnet50_stage4", "roc_auc", 0.999, "0.999"),
        ("001", "VI", "breakhis", "100", "", "n_train", 1249, "1249"),
        ("001", "VII", "breakhis", "200", "dalaresnet50", "g_mean", 0.98, "0.980"),
        ("001", "VIII", "miniddsm", "all", "dalaresnet50", "accuracy", 0.807, "0.8070"),
        ("001", "VIII", "bach", "all", "vgg16_inception", "f1_minority", 0.864, "0.864/0.727"),
        ("001", "X", "bach", "all", "dalaresnet50", "params", 24042692, "24042692"),
        ("001", "X", "miniddsm", "all", "dalaresnet50", "params", 24040643, "24040643"),
        ("001", "XI", "breakhis", "100", "dalaresnet50", "specificity", 0.990, "0.990"),
        ("001", "XII", "bach", "all", "dalaresnet50", "npv", 0.731, "0.731"),
        ("001", "XIV", "breakhis", "40", "dtgradcam", "iou", 0.3993, "0.3993"),
        ("001", "XIV", "breakhis", "400", "gradcam", "recall", 0.4472, "0.4472"),
        ("003", 1, "breakhis", "all", "ernet50", "accuracy", 0.9575, "95.75"),
        ("003", 1, "breakhis", "all", "ernet50", "params", 25_560_000, "25.56"),
        ("003", 1, "breakhis", "all", "ernet101", "flops", 9.2e9, "9.2"),
        ("003", 2, "breakhis", "400", "ernet50", "accuracy", 0.8982, "89.82"),
        ("003", 2, "breakhis", "200", "ernet50", "accuracy", 0.9591, "95.91"),
        ("004", 2, "cddcesm", "all", "resnet50_frozen10", "accuracy", 0.892, "0.892"),
        ("004", 3, "mias", "all", "resnet50_frozen10", "accuracy", 0.983, "0.9830"),
        # issue 11: class counts of 001 Tables IV-V; paper 004's section-2 comparators and Fig. 5
        ("001", "IV", "bach", "all", "", "n_InSitu", 100, "100"),
        ("001", "IV", "bach", "all", "", "n_total", 400, "400"),
        ("001", "V", "miniddsm", "all", "", "n_Cancer", 800, "800"),
        ("001", "V", "miniddsm", "all", "", "n_Benign", 700, "700"),
        ("004", 2, "cddcesm", "all", "ref13_yolov4_vit", "map", 0.7165, "71.65"),
        ("004", 2, "cddcesm", "all", "ref14_resnet18_dwnr", "accuracy", 0.8291, "82.91"),
        ("004", 2, "cddcesm", "all", "ref15_birads_cad", "accuracy", 0.85, "85.0"),
        ("004", 2, "cddcesm", "all", "resnet50_frozen10", "false_positives", 22, "22"),
    ],
)
def test_numbers_read_from_the_papers(paper, table, dataset, subset, model, metric, value, printed):
    df = load_published(paper, table)
    row = df[(df.dataset == dataset) & (df.subset == subset) & (df.model == model) & (df.metric == metric)]
    assert len(row) == 1
    assert row["value"].iloc[0] == pytest.approx(value)
    assert row["printed"].iloc[0] == printed


def _values(paper, table):
    return load_published(paper, table).set_index(KEY)["value"].sort_index()


def test_paper_001_repeats_paper_000_tables_6_and_7():
    # That is why the experiments list only paper 000's copies.
    pd.testing.assert_series_equal(_values("000", 6), _values("001", "VII"))
    pd.testing.assert_series_equal(_values("000", 7), _values("001", "IX"))


def test_placement_stage4_is_the_main_dalaresnet50_row():
    stage4 = load_published("001", 2).query("model == 'dalaresnet50_stage4' and metric != 'roc_auc'")
    main = load_published("000", 6).query("model == 'dalaresnet50'")
    merged = stage4.merge(main, on=["subset", "metric"])
    assert len(merged) == 12  # 4 magnifications x (accuracy, f1_minority, f1_weighted)
    assert (merged["value_x"] == merged["value_y"]).all()


def test_counts_add_up():
    t3 = load_published("000", 3).pivot(index="subset", columns="metric", values="value")
    assert ((t3.n_benign + t3.n_malignant) == t3.n_total).all()
    t6 = load_published("001", 6).pivot(index=["dataset", "subset"], columns="metric", values="value")
    assert ((t6.n_train + t6.n_val + t6.n_test) == t6.n_total).all()
    assert t6.loc[("breakhis", "40"), "n_total"] == t3.loc["40", "n_total"]
    for table, dataset in (("IV", "bach"), ("V", "miniddsm")):  # class counts vs Table VI totals
        counts = load_published("001", table).set_index("metric")["value"]
        assert counts.drop("n_total").sum() == counts["n_total"] == t6.loc[(dataset, "all"), "n_total"]


def test_load_published_names_the_way_out():
    assert len(load_published("1", "vii")) == len(load_published("001", 7))
    with pytest.raises(FileNotFoundError, match="typed tables"):
        load_published("000", 8)
    with pytest.raises(ValueError, match="unknown paper"):
        load_published("009", 1)
    with pytest.raises(ValueError, match="roman numeral"):
        load_published("000", "six")


def test_experiments_dir_override(tmp_path, monkeypatch):
    (tmp_path / "dala" / "published").mkdir(parents=True)
    src = next(t.path for t in TABLES if t.paper == "000" and t.table == "6")
    shutil.copy(src, tmp_path / "dala" / "published" / "000_table6.csv")
    monkeypatch.setenv("BREASTCAM_EXPERIMENTS", str(tmp_path))
    assert [(t.paper, t.table) for t in published_tables()] == [("000", "6")]
    assert len(load_published("000", 6)) == 180


def test_a_csv_without_a_required_column_is_refused(tmp_path):
    bad = tmp_path / "000_table6.csv"
    pd.DataFrame({c: ["x"] for c in REQUIRED_COLUMNS if c != "printed"}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="printed"):
        read_published_csv(bad)


def test_printed_value_reads_pairs_and_units():
    assert printed_value("0.779/0.883", "f1_minority") == 0.779
    assert printed_value("0.779/0.883", "f1_weighted") == 0.883
    assert printed_value("60%", "fraction_train", "percent") == pytest.approx(0.6)
    assert printed_value("45.6", "params", "million") == pytest.approx(45.6e6)
    with pytest.raises(ValueError):
        printed_value("0.1/0.2", "accuracy")


def test_a_missing_experiments_folder_says_how_to_point_at_one(tmp_path, monkeypatch):
    monkeypatch.setenv("BREASTCAM_EXPERIMENTS", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="BREASTCAM_EXPERIMENTS"):
        load_published("000", 6)


def test_paper_003_text_numbers_are_typed_and_contradict_table_2_where_the_readme_says():
    """Sec. 4.3.1's counts and Sec. 4.3.2's accuracies, kept apart from the tables."""
    from breastcam.report import load_published_text

    text = load_published_text("003")
    assert list(text.columns) == list(COLUMNS)
    assert (text["table"] == "text").all()
    for row in text.itertuples():
        assert math.isclose(row.value, printed_value(row.printed, row.metric, row.unit),
                            rel_tol=1e-9), row
    counts = text.pivot_table(index="subset", columns="metric", values="value")
    assert counts.loc[["40", "100", "200", "400"], "n_test"].tolist() == [728, 785, 835, 760]
    by_counts = (counts["n_correct"] / counts["n_test"]).round(4)
    assert by_counts.loc["200"] == pytest.approx(0.9593, abs=1e-4)
    table2 = load_published("003", 2)
    acc2 = table2[table2["metric"] == "accuracy"].set_index("subset")["value"]
    # the text's 40x and 400x accuracies are not Table 2's; 100x and 200x are
    differs = sorted(s for s in acc2.index
                     if abs(acc2[s] - counts.loc[s, "accuracy"]) > 1e-9)
    assert differs == ["40", "400"]
    # nor do the counts give Table 2 at two decimals anywhere
    assert ((by_counts - acc2.reindex(by_counts.index)).abs() > 5e-5).all()


def test_the_solver_reads_paper_003s_test_sizes_from_the_text_file():
    from breastcam.report.metric_solver import test_set

    assert test_set("B", "breakhis", "400").n == 760
    assert "4.3.1" in test_set("B", "breakhis", "40").source
