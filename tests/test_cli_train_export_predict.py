"""A newcomer's path on the real BreakHis sample, from the command line: ``breastcam manifest`` ->
``split`` -> ``train`` (a paper protocol, tiny: small input, 1 epoch, random weights) -> in a
fresh process ``breastcam evaluate RUN``, ``breastcam export RUN`` and ``breastcam predict`` on a
PNG. ERNet-18 (paper B, custom ``ERWeightedSum`` layers) and ViT-B/16 (keras-hub backbone, custom
``TokensToGrid``) are the models whose files used to need their family imported by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import yaml

from breastcam import models
from breastcam.cli import main
from breastcam.data.preprocess import get_preprocessor
from breastcam.export import Predictor

PROTOCOLS = Path(__file__).resolve().parents[1] / "experiments" / "protocols"

FRESH = textwrap.dedent(
    """
    import sys
    from breastcam.cli import main
    run_dir, image, pred_dir = sys.argv[1:4]
    assert main(["evaluate", run_dir, "--n-bootstrap", "0", "--no-figures"]) == 0
    assert main(["export", run_dir]) == 0
    assert main(["predict", run_dir + "/export/savedmodel", image, "--out", pred_dir]) == 0
    """
)


def _small_settings(name: str) -> list[str]:
    """``--set`` items for the registry's small configuration of ``name``."""
    shape, options = models.spec(name).small_config()
    flow = yaml.safe_dump(options, default_flow_style=True).strip()
    return [f"data.image_size={shape[0]}", f"model.options={flow}"]


@pytest.mark.slow
@pytest.mark.parametrize("name, protocol, extra", [
    ("ernet18", "ernet", ["data.fold=0"]),  # paper B's protocol: 5 folds inside the 70 %
    ("vit_b16", "dala", []),  # paper A's protocol, where the transformers are baselines
])
def test_cli_train_then_export_and_predict_in_a_fresh_process(name, protocol, extra, breakhis_root, tmp_path):
    manifest, split, run_dir = tmp_path / "manifest.csv", tmp_path / "split.csv", tmp_path / "run"
    assert main(["manifest", "breakhis", str(breakhis_root), "--out", str(manifest)]) == 0
    assert main(["split", str(manifest), "--protocol", protocol, "--out", str(split)]) == 0
    settings = [f"data.manifest={split}", f"data.root={breakhis_root}", f"model.name={name}",
                "model.weights=null", "train.epochs=1", "train.batch_size=8", f"output_dir={run_dir}",
                *_small_settings(name), *extra]
    assert main(["train", "--config", str(PROTOCOLS / f"{protocol}.yaml"), "--quiet", "--set", *settings]) == 0
    assert (run_dir / "best.keras").is_file()

    rows = pd.read_csv(split)
    image = str(breakhis_root / rows.loc[rows["split"] == "test", "path"].iloc[0])
    done = subprocess.run([sys.executable, "-c", FRESH, str(run_dir), image, str(tmp_path / "pred")],
                          capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert json.loads((run_dir / "metrics.json").read_text())["n"] == int((rows["split"] == "test").sum())

    model = models.load_model(run_dir / "best.keras")
    assert model.name == name
    pixels = Predictor(run_dir / "export" / "savedmodel").load([image])
    preprocessing = json.loads((run_dir / "run_info.json").read_text())["preprocessing"]
    expected = model.predict(get_preprocessor(preprocessing)(tf.constant(pixels)), verbose=0)
    got = pd.read_csv(tmp_path / "pred" / "predictions.csv")
    np.testing.assert_allclose(got[["prob_benign", "prob_malignant"]].to_numpy(), expected, atol=1e-5)
