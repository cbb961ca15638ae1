"""The offline demo end to end, shrunk (the full `breastcam demo` is timed by hand: README)."""

import json

import pytest

from breastcam.cli import main

pytestmark = pytest.mark.slow


def test_demo_writes_metrics_figures_and_overlays(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "2", "--image-size", "48"]) == 0
    summary = json.loads((out / "demo_summary.json").read_text())
    run_dir = out / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n"] > 0
    assert summary["accuracy"] == metrics["accuracy"]
    # the trust section: calibrated on validation, conformal sets and selective risk on test
    assert summary["temperature"] > 0 and metrics["trust"]["temperature"] == summary["temperature"]
    assert 0.0 <= metrics["trust"]["coverage"] <= 1.0 and metrics["trust"]["mean_set_size"] >= 0
    assert "aurc" in metrics["trust"]["ci"]
    assert {"confusion_matrix.png", "roc.png", "curves.png", "reliability.png", "risk_coverage.png"} <= {
        p.name for p in run_dir.glob("*.png")}
    assert len(summary["overlays"]) == 4
    # The split is by patient: no patient in two splits.
    import pandas as pd

    split = pd.read_csv(out / "split.csv")
    assert split.groupby("patient_id")["split"].nunique().max() == 1
