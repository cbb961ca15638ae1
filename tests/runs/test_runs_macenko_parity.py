"""A trained model is one object: an ERNet run trained with paper B's Macenko normalisation gives
the same probabilities through ``evaluate``, ``predict`` on its SavedModel, ``predict`` on the run
folder and ``explain`` (the probability it reports) — within 1e-5 in float32.

Before the run package, export / predict / explain dropped the run's normaliser: the SavedModel
matched the run's evaluation *without* stain normalisation, off by up to 0.01 after two epochs.
Everything here goes through the command line, as a user would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from breastcam import models
from breastcam.cli import main

ATOL = 1e-5
PROBS = ["prob_benign", "prob_malignant"]


@pytest.fixture(scope="module")
def macenko_run(breakhis_root, tmp_path_factory):
    """``breastcam manifest`` -> ``split`` -> ``train`` ERNet-18 (small, 2 epochs, Macenko)."""
    tmp = tmp_path_factory.mktemp("macenko_run")
    manifest, split, run_dir = tmp / "manifest.csv", tmp / "split.csv", tmp / "run"
    assert main(["manifest", "breakhis", str(breakhis_root), "--out", str(manifest)]) == 0
    assert main(["split", str(manifest), "--protocol", "dala", "--out", str(split)]) == 0
    rows = pd.read_csv(split)
    reference = breakhis_root / rows.loc[rows["split"] == "train", "path"].iloc[0]
    shape, options = models.spec("ernet18").small_config()
    stain = yaml.safe_dump({"method": "macenko", "reference": str(reference)}, default_flow_style=True).strip()
    flow = yaml.safe_dump(options, default_flow_style=True).strip()
    settings = [f"data.manifest={split}", f"data.root={breakhis_root}", "model.name=ernet18",
                "model.weights=null", "train.epochs=2", "train.batch_size=8", f"output_dir={run_dir}",
                f"data.image_size={shape[0]}", f"model.options={flow}", f"data.stain={stain}",
                "data.augmentation=none", "train.bn_momentum=0.5"]
    config = Path(__file__).resolve().parents[2] / "experiments" / "protocols" / "dala.yaml"
    assert main(["train", "--config", str(config), "--quiet", "--set", *settings]) == 0
    test = rows[rows["split"] == "test"]
    images = [str(breakhis_root / p) for p in test["path"]]
    assert main(["evaluate", str(run_dir), "--n-bootstrap", "0", "--no-figures"]) == 0
    evaluated = pd.read_csv(run_dir / "predictions.csv")
    return run_dir, images, evaluated, tmp


def _by_file(frame: pd.DataFrame, images: list[str]) -> np.ndarray:
    """Probabilities in the order of ``images`` (matched on the file name)."""
    names = frame["path"].map(lambda p: str(p).rsplit("/", 1)[-1])
    table = frame.assign(_name=names.to_numpy()).set_index("_name")
    return table.loc[[p.rsplit("/", 1)[-1] for p in images], PROBS].to_numpy(dtype=np.float64)


@pytest.mark.slow
def test_evaluate_predict_and_explain_agree_on_a_macenko_run(macenko_run):
    run_dir, images, evaluated, tmp = macenko_run
    expected = _by_file(evaluated, images)

    assert main(["export", str(run_dir)]) == 0
    assert main(["predict", str(run_dir / "export" / "savedmodel"), *images, "--out", str(tmp / "sm")]) == 0
    np.testing.assert_allclose(_by_file(pd.read_csv(tmp / "sm" / "predictions.csv"), images), expected, atol=ATOL)

    assert main(["predict", str(run_dir), *images, "--out", str(tmp / "rd")]) == 0
    np.testing.assert_allclose(_by_file(pd.read_csv(tmp / "rd" / "predictions.csv"), images), expected, atol=ATOL)

    assert main(["explain", "--model", str(run_dir), "--images", *images, "--method", "gradcam",
                 "--out", str(tmp / "cams"), "--quiet"]) == 0
    explained = pd.read_csv(tmp / "cams" / "metrics.csv")
    names = explained["path"].map(lambda p: str(p).rsplit("/", 1)[-1]).tolist()
    order = [names.index(p.rsplit("/", 1)[-1]) for p in images]
    got = explained["target_probability"].to_numpy()[order]
    target = explained["target"].to_numpy()[order]
    np.testing.assert_allclose(got, expected[np.arange(len(images)), target], atol=ATOL)
