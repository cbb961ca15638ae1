"""End to end on the real samples: ``reproduce(..., quick=True)`` trains, evaluates and reports.

Each test runs one experiment once (module-scoped fixtures) with one model to keep CI time
modest; the CLI test reuses the finished runs (a rerun trains nothing), and so do the notebooks
(tests/test_notebooks.py), which run the same quick reproductions into the session's
``quick_reports`` folder.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from breastcam.report import load_published
from breastcam.report.tables import format_cell
from breastcam.reproduce import reproduce

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def breakhis_report(breakhis_root, quick_reports):
    out = quick_reports
    html = reproduce("dala-breakhis", breakhis_root, quick=True, out_dir=out,
                     models=["dalaresnet50"], log=lambda _: None)
    return out, html


def test_reproduce_quick_dala_breakhis_report(breakhis_report):
    out, html = breakhis_report
    assert html == out / "dala-breakhis" / "index.html"
    text = html.read_text()
    table6 = load_published("000", 6)
    acc = table6[(table6["model"] == "dalaresnet50") & (table6["subset"] == "40")
                 & (table6["metric"] == "accuracy")]["value"].item()
    assert format_cell(acc) in text  # the published number from paper 000 Table 6
    comparison = pd.read_csv(out / "dala-breakhis" / "comparison.csv")
    row = comparison[(comparison["model"] == "dalaresnet50") & (comparison["metric"] == "accuracy")
                     & (comparison["subset"].astype(str) == "40")]
    assert set(row["protocol"]) == {"dala", "patient"}
    assert row["published"].eq(acc).all()
    reproduced = row["reproduced"].dropna()
    assert len(reproduced) == 2 and reproduced.between(0, 1).all()
    assert format_cell(reproduced.iloc[0]) in text
    for needle in ("quick mode", "weights=None", "pooled", "Confusion matrix", "sha256",
                   "tensorflow", "attention_stage"):
        assert needle in text, needle
    status = json.loads((out / "dala-breakhis" / "status.json").read_text())
    assert status == {"runs": 2, "failed": 0, "report": str(html)}


def test_reproduce_cli_reuses_finished_runs(breakhis_report, breakhis_root, capsys):
    from breastcam.cli import main

    out, html = breakhis_report
    before = (out / "dala-breakhis" / "runs" / "all-dala" / "dalaresnet50" / "run" /
              "best.keras").stat().st_mtime
    code = main(["reproduce", "dala-breakhis", "--data-dir", str(out / "missing"), "--out",
                 str(out / "elsewhere")])
    assert code == 1 and "not found" in capsys.readouterr().err
    assert not (out / "elsewhere").exists()  # nothing written before the data is found
    code = main(["reproduce", "dala-breakhis", "--data-dir", str(breakhis_root),
                 "--quick", "--out", str(out), "--models", "dalaresnet50"])
    assert code == 0
    after = (out / "dala-breakhis" / "runs" / "all-dala" / "dalaresnet50" / "run" /
             "best.keras").stat().st_mtime
    assert after == before  # finished runs are not trained again


def test_reproduce_quick_modres_mias(mias_root, quick_reports):
    html = reproduce("modres-mias", mias_root, quick=True, out_dir=quick_reports, seeds=[0, 1],
                     models=["resnet50_frozen10"], protocols=["modres"], log=lambda _: None)
    exp_dir = quick_reports / "modres-mias"
    text = html.read_text()
    assert "split before augmenting" in text  # paper C's leak, said as a deviation
    expanded = pd.read_csv(exp_dir / "modres" / "all-modres" / "manifest.csv")
    split = pd.read_csv(exp_dir / "splits" / "all-modres.csv")
    n_train = int((split["split"] == "train").sum())
    assert int((expanded["split"] == "train").sum()) == 6 * n_train  # 6x (flips, shift, shear, rotation), training split only
    assert (expanded["split"] != "train").sum() == (split["split"] != "train").sum()
    assert set(expanded.loc[expanded["augmentation"].fillna("") != "", "split"]) == {"train"}
    comparison = pd.read_csv(exp_dir / "comparison.csv")
    acc = comparison[(comparison["model"] == "resnet50_frozen10") & (comparison["metric"] == "accuracy")]
    assert acc["published"].notna().any() and acc["reproduced"].notna().any()
    # breastcam's trust section: the run was calibrated on its validation split (calibrate) and the
    # report shows calibration before / after, conformal coverage and selective risk
    assert "<h2>Trust in the prediction</h2>" in text and "E-AURC" in text and "coverage (1 - alpha)" in text
    run_dir = next((exp_dir / "runs").rglob("calibration.json")).parent
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trust"]["temperature"] > 0 and "ece_before" in metrics["trust"]
    # two seeds on one split: their deep ensemble, with its predictions beside the report
    assert "<h3>Deep ensembles</h3>" in text and "epistemic (nats)" in text
    ensemble = pd.read_csv(exp_dir / "ensembles" / "all-modres-resnet50_frozen10.csv")
    assert (ensemble["members"] == 2).all() and (ensemble["epistemic"] >= 0).all()
