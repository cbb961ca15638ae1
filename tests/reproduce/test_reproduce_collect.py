"""Collecting run metrics into the reproduced table, and the report around it (no training)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest

from breastcam.report import load_experiment
from breastcam.reproduce.collect import collect, metric_value
from breastcam.reproduce.report import assemble


def _metrics(acc: float) -> dict:
    return {"accuracy": acc, "positive_class": "malignant", "ci": {"accuracy": [acc - 0.1, acc + 0.05]},
            "f1_per_class": {"benign": 0.5, "malignant": acc / 2}, "ppv": 0.7, "sensitivity": None}


def test_reproduce_metric_value_names():
    m = _metrics(0.8) | {"log_loss": 0.3, "n_params": 10, "seconds_to_best": 12.5}
    assert metric_value(m, "f1_positive") == pytest.approx(0.4)
    assert metric_value(m, "loss") == 0.3 and metric_value(m, "params") == 10
    assert metric_value(m, "convergence_time") == 12.5
    assert metric_value(m, "sensitivity") is None and metric_value(m, "roc_auc") is None


def test_reproduce_collect_single_run_ci_and_folds_mean_t_interval(tmp_path):
    exp = load_experiment("ernet-breakhis")
    groups = {}
    for fold, acc in enumerate([0.8, 0.9, 0.7]):
        d = tmp_path / f"fold_{fold}"
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps(_metrics(acc)))
        groups.setdefault(("40", "ernet", "ernet50"), []).append(d)
    single = tmp_path / "single"
    single.mkdir()
    (single / "metrics.json").write_text(json.dumps(_metrics(0.6)))
    groups[("100", "ernet", "ernet50")] = [single]
    plan = SimpleNamespace(experiment=exp, report_by=None)
    table = collect(plan, SimpleNamespace(groups=groups))
    acc = table[(table["metric"] == "accuracy")].set_index("subset")
    assert acc.loc["40", "value"] == pytest.approx(0.8)
    assert acc.loc["40", "std"] == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n)
    assert acc.loc["40", "ci_low"] == pytest.approx(0.8 - half)
    assert acc.loc["100", ["value", "ci_low", "ci_high"]].tolist() == pytest.approx([0.6, 0.5, 0.65])
    assert set(table["metric"]) == {"accuracy", "ppv", "f1_positive"}  # None / absent left out


def test_reproduce_collect_pooled_reports_per_subset(tmp_path):
    exp = load_experiment("dala-breakhis")
    d = tmp_path / "run"
    d.mkdir()
    (d / "metrics.json").write_text(json.dumps(_metrics(0.75)))
    (d / "metrics_by_magnification.json").write_text(json.dumps({"40": _metrics(0.5), "400": _metrics(1.0)}))
    plan = SimpleNamespace(experiment=exp, report_by="magnification")
    table = collect(plan, SimpleNamespace(groups={("all", "dala", "dalaresnet50"): [d]}))
    acc = table[table["metric"] == "accuracy"].set_index("subset")["value"]
    assert acc.to_dict() == {"40": 0.5, "400": 1.0, "all": 0.75}


def test_reproduce_report_places_published_beside_reproduced(tmp_path):
    exp = load_experiment("dala-breakhis")
    reproduced = pd.DataFrame([{"dataset": "breakhis", "subset": "40", "protocol": "dala",
                                "model": "dalaresnet50", "metric": "accuracy", "value": 0.5,
                                "ci_low": 0.25, "ci_high": 0.75, "std": math.nan, "runs": 1}])
    html = assemble(tmp_path, experiment=exp, reproduced=reproduced,
                    deviations=["a deviation"], notes=["a note"], failures=[("r", "boom")])
    table = pd.read_csv(tmp_path / "comparison.csv")
    row = table[(table["model"] == "dalaresnet50") & (table["metric"] == "accuracy")
                & (table["subset"] == 40)]
    assert len(row) == 1 and row["reproduced"].item() == 0.5 and row["published"].notna().all()
    text = html.read_text()
    assert "[0.25, 0.75]" in text and "a deviation" in text and "run failed: r: boom" in text


def test_reproduce_report_shows_the_extension_beside_the_papers_task(tmp_path):
    """modres-cddcesm (normal vs malignant, the paper's task) shows normal vs abnormal beside it:
    how to run it while its folder is missing, its rows once it has run in the same --out."""
    exp = load_experiment("modres-cddcesm")
    assert exp["beside"] == ["modres-cddcesm-abnormal"]
    assert load_experiment("modres-cddcesm-abnormal")["filters"]["classes"] == "binary"
    row = {"dataset": "cddcesm", "subset": "all", "protocol": "modres", "model": "resnet50_frozen10",
           "metric": "accuracy", "value": 0.5, "ci_low": 0.25, "ci_high": 0.75, "std": math.nan,
           "runs": 1}
    html = assemble(tmp_path / "modres-cddcesm", experiment=exp, reproduced=pd.DataFrame([row]))
    text = html.read_text()
    assert "Beside the paper: modres-cddcesm-abnormal" in text
    assert "breastcam reproduce modres-cddcesm-abnormal" in text  # how to run it
    other = tmp_path / "modres-cddcesm-abnormal"
    other.mkdir()
    pd.DataFrame([{**row, "value": 0.8125}]).to_csv(other / "reproduced.csv", index=False)
    text = assemble(tmp_path / "modres-cddcesm", experiment=exp,
                    reproduced=pd.DataFrame([row])).read_text()
    assert "0.8125" in text and "not a number of the paper" in text
    md = (tmp_path / "modres-cddcesm" / "report.md").read_text()
    assert "## Beside the paper: modres-cddcesm-abnormal" in md and "0.8125" in md


def test_reproduce_collect_two_folds_interval_in_range_and_paper_values(tmp_path):
    exp = load_experiment("ernet-breakhis")
    groups = {}
    for fold, (acc, sens) in enumerate([(0.5, 0.0), (0.6, 0.25)]):
        d = tmp_path / f"fold_{fold}"
        d.mkdir()
        m = _metrics(acc) | {"sensitivity": sens, "class_names": ["benign", "malignant"],
                             "paper": {"binary": {"metrics": {"sensitivity": sens + 0.1}}}}
        (d / "metrics.json").write_text(json.dumps(m))
        groups.setdefault(("40", "ernet", "ernet50"), []).append(d)
    plan = SimpleNamespace(experiment=exp, report_by=None)
    table = collect(plan, SimpleNamespace(groups=groups)).set_index("metric")
    sens = table.loc["sensitivity"]
    # the old t-interval over 2 folds was [-1.4633, 1.7133]
    assert 0.0 <= sens["ci_low"] <= sens["ci_high"] <= 1.0
    assert not sens["ci_decisive"] and "fewer than 3 runs" in sens["ci_method"]
    assert sens["value"] == pytest.approx(0.125)
    assert sens["paper_value"] == pytest.approx(0.225)  # mean of the per-run paper values


def test_reproduce_collect_two_folds_get_the_pooled_bootstrap_beside_the_t_interval(tmp_path):
    # Two folds: the t-interval is flagged (fewer than 3 runs), so the interval shown and
    # judged is the percentile bootstrap over both folds' pooled predictions, inside [0, 1].
    exp = load_experiment("ernet-breakhis")
    groups = {}
    for fold, sens in enumerate([0.0, 0.25]):
        d = tmp_path / f"fold_{fold}"
        d.mkdir()
        m = _metrics(0.5) | {"sensitivity": sens, "class_names": ["benign", "malignant"],
                             "bootstrap": {"n_bootstrap": 200, "seed": 5}}
        (d / "metrics.json").write_text(json.dumps(m))
        truth = [0, 1, 1, 1, 1, 0, 0, 1]
        pred = [0, 0, 0, 0, 1, 1, 0, 0] if fold else [0, 0, 0, 0, 0, 0, 0, 0]
        pd.DataFrame({"truth_index": truth, "prob_benign": [1.0 - p for p in pred],
                      "prob_malignant": [float(p) for p in pred]}).to_csv(d / "predictions.csv")
        groups.setdefault(("40", "ernet", "ernet50"), []).append(d)
    table = collect(SimpleNamespace(experiment=exp, report_by=None),
                    SimpleNamespace(groups=groups)).set_index("metric")
    sens = table.loc["sensitivity"]
    assert 0.0 <= sens["ci_low"] <= sens["ci_high"] <= 1.0 and sens["ci_high"] < 1.0
    assert sens["ci_decisive"]
    assert sens["ci_method"].startswith("percentile bootstrap over the pooled test predictions "
                                        "of 2 runs (16 images, 200 resamples, seed 5)")
    assert "beside it, t-interval of the mean of 2 runs" in sens["ci_method"]
