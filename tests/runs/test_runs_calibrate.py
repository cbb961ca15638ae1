"""``breastcam calibrate`` -> the run serves calibrated probabilities and conformal sets everywhere:
``evaluate`` (with the trust block of metrics.json), the SavedModel, ``predict`` (with
``--refer-above``), the model card; ``--reset`` removes it; bad requests get one clear message."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from breastcam.cli import main
from breastcam.data import make_synthetic
from breastcam.runs import Run, files
from helpers_runs import make_run

PROBS = ["prob_benign", "prob_malignant"]


@pytest.fixture(scope="module")
def run_and_rows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calibrate")
    df = make_synthetic(tmp / "data", n_patients=24, images_per_patient=2, image_size=(64, 64), seed=0)
    df = df.assign(label=df["label_index"].map({0: "benign", 1: "malignant"}))
    df["split"] = np.where(np.arange(len(df)) % 2 == 0, "val", "test")
    return make_run(tmp / "run", "tinycnn", tmp / "data", df), df, tmp


def test_calibrate_then_every_command_serves_the_calibration(run_and_rows, capsys):
    run_dir, rows, tmp = run_and_rows
    assert main(["calibrate", str(run_dir), "--alpha", "0.2"]) == 0
    assert "temperature" in capsys.readouterr().out
    cal = json.loads((run_dir / files.CALIBRATION).read_text())
    assert cal["fitted_on"]["temperature_images"] + cal["fitted_on"]["conformal_images"] == 24
    assert cal["validation"]["nll_after"] <= cal["validation"]["nll_before"] + 1e-9

    assert main(["evaluate", str(run_dir), "--n-bootstrap", "20", "--no-figures"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    block = metrics["trust"]
    assert block["temperature"] == pytest.approx(cal["temperature"])
    for key in ("ece", "ece_before", "nll", "nll_before", "brier", "brier_before", "coverage",
                "mean_set_size", "aurc", "e_aurc"):
        assert key in block and key in block["ci"], key
    assert set(block["selective"]) == {"80", "90", "95"}
    evaluated = pd.read_csv(run_dir / "predictions.csv")
    assert {"uncertainty", "prediction_set", "set_size"} <= set(evaluated.columns)

    test = rows[rows["split"] == "test"]
    images = [str(tmp / "data" / p) for p in test["path"]]
    assert main(["export", str(run_dir), "--out", str(tmp / "sm")]) == 0
    assert main(["predict", str(tmp / "sm"), *images, "--out", str(tmp / "p"), "--refer-above", "0.6"]) == 0
    served = pd.read_csv(tmp / "p" / "predictions.csv")
    np.testing.assert_allclose(served[PROBS].to_numpy(), evaluated[PROBS].to_numpy(), atol=1e-5)
    np.testing.assert_allclose(served["uncertainty"], evaluated["uncertainty"], atol=1e-5)
    assert served["prediction_set"].fillna("").tolist() == evaluated["prediction_set"].fillna("").tolist()
    assert served["refer"].tolist() == ((served["uncertainty"] > 0.6) | (evaluated["set_size"] != 1)).tolist()
    card = json.loads((tmp / "sm" / "model_card.json").read_text())
    assert card["calibration"]["temperature"] == pytest.approx(cal["temperature"])

    assert main(["calibrate", str(run_dir), "--reset"]) == 0
    assert Run.open(run_dir).calibration is None


def test_vector_scaling_is_served_by_evaluate_and_the_savedmodel_alike(run_and_rows, capsys):
    run_dir, rows, tmp = run_and_rows
    assert main(["calibrate", str(run_dir), "--method", "vector", "--alpha", "0.2"]) == 0
    assert "vector scaling (scale" in capsys.readouterr().out
    cal = json.loads((run_dir / files.CALIBRATION).read_text())
    assert cal["method"] == "vector" and cal["temperature"] is None
    assert len(cal["vector"]["scale"]) == len(cal["vector"]["bias"]) == 2
    assert cal["validation"]["nll_after"] <= cal["validation"]["nll_before"] + 1e-9
    assert main(["evaluate", str(run_dir), "--n-bootstrap", "20", "--no-figures"]) == 0
    block = json.loads((run_dir / "metrics.json").read_text())["trust"]
    assert block["calibration_method"] == "vector" and block["temperature"] is None
    assert "nll_before" in block and "ece_before" in block  # from the network's own probabilities
    evaluated = pd.read_csv(run_dir / "predictions.csv")
    test = rows[rows["split"] == "test"]
    images = [str(tmp / "data" / p) for p in test["path"]]
    assert main(["export", str(run_dir), "--out", str(tmp / "sm_vector")]) == 0
    assert main(["predict", str(tmp / "sm_vector"), *images, "--out", str(tmp / "pv")]) == 0
    served = pd.read_csv(tmp / "pv" / "predictions.csv")
    np.testing.assert_allclose(served[PROBS].to_numpy(), evaluated[PROBS].to_numpy(), atol=1e-5)
    assert served["prediction_set"].fillna("").tolist() == evaluated["prediction_set"].fillna("").tolist()
    card = json.loads((tmp / "sm_vector" / "model_card.json").read_text())
    assert card["calibration"]["method"] == "vector"
    assert main(["calibrate", str(run_dir), "--reset"]) == 0


def test_bad_calibration_requests(run_and_rows, tmp_path, capsys):
    run_dir, rows, _ = run_and_rows
    assert main(["calibrate", str(run_dir), "--alpha", "1.5"]) == 2
    assert "--alpha 1.5 must be in (0, 1)" in capsys.readouterr().err
    no_val = make_run(tmp_path / "r2", "tinycnn", tmp_path, rows.assign(split="test").head(2).assign(
        path=lambda d: [str(run_dir.parent / "data" / p) for p in d["path"]]))
    assert main(["calibrate", str(no_val)]) == 1
    assert "no validation images" in capsys.readouterr().err


def test_evaluate_with_test_time_augmentation(run_and_rows, capsys):
    run_dir, rows, _ = run_and_rows
    assert main(["evaluate", str(run_dir), "--uncertainty", "tta:4", "--n-bootstrap", "0", "--no-figures"]) == 0
    frame = pd.read_csv(run_dir / "predictions.csv")
    tta = frame[["tta_prob_benign", "tta_prob_malignant"]].to_numpy()
    np.testing.assert_allclose(tta.sum(1), 1.0, atol=1e-5)
    assert (frame["tta_uncertainty"] >= 0).all()
    assert np.abs(tta - frame[PROBS].to_numpy()).max() > 0  # the views differ from the image alone
    block = json.loads((run_dir / "metrics.json").read_text())["trust"]["tta"]
    assert block["k"] == 4 and block["recipe"] == "dala" and 0 <= block["accuracy"] <= 1
    for bad, words in (("tta:1", "at least 2"), ("mc:1", "at least 2"), ("mc:x", "whole number"),
                       ("tta:x", "whole number"), ("ensemble:3", "mc:K")):
        assert main(["evaluate", str(run_dir), "--uncertainty", bad]) == 2
        assert words in capsys.readouterr().err


def test_evaluate_with_mc_dropout(run_and_rows):
    """tinycnn has BatchNorm and a 0.25 head dropout: the K draws differ, the single pass is the
    ordinary prediction (dropout off, BN in inference mode) and evaluating twice gives the same
    draws (seeded)."""
    run_dir, rows, _ = run_and_rows
    assert main(["evaluate", str(run_dir), "--n-bootstrap", "0", "--no-figures"]) == 0
    plain = pd.read_csv(run_dir / "predictions.csv")[PROBS].to_numpy()
    assert main(["evaluate", str(run_dir), "--uncertainty", "mc:8", "--n-bootstrap", "0", "--no-figures"]) == 0
    frame = pd.read_csv(run_dir / "predictions.csv")
    np.testing.assert_allclose(frame[PROBS].to_numpy(), plain, atol=1e-5)
    mc = frame[["mc_prob_benign", "mc_prob_malignant"]].to_numpy()
    np.testing.assert_allclose(mc.sum(1), 1.0, atol=1e-5)
    assert np.abs(mc - plain).max() > 1e-4  # the draws are not the ordinary pass
    block = json.loads((run_dir / "metrics.json").read_text())["trust"]["mc"]
    assert block["k"] == 8 and "recipe" not in block and block["mean_uncertainty"] >= 0
    assert main(["evaluate", str(run_dir), "--uncertainty", "mc:8", "--n-bootstrap", "0", "--no-figures"]) == 0
    again = pd.read_csv(run_dir / "predictions.csv")[["mc_prob_benign", "mc_prob_malignant"]].to_numpy()
    np.testing.assert_allclose(again, mc, atol=1e-6)
