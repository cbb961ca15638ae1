"""Paper B's protocol on the real BreakHis sample: 70/30, 5 folds in the 70 %, one run
directory per fold, then mean +- std over the folds. The protocol is under test, not the model:
``tinycnn`` with paper B's loss and optimiser (ERNet itself goes through `breastcam train` in
tests/test_cli_train_export_predict.py and through every command in tests/test_every_model.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from breastcam.cli import main
from breastcam.data import load_manifest, make_split, write_split

pytestmark = pytest.mark.slow


def test_five_fold_protocol_b_gives_five_runs_and_an_aggregate(tmp_path, breakhis_root):
    df = load_manifest("breakhis", breakhis_root)
    split = make_split(df, "ernet", seed=0)
    assert sorted(split.loc[split["split"] != "test", "fold"].unique()) == [0, 1, 2, 3, 4]
    split_csv = tmp_path / "split.csv"
    write_split(split, split_csv)
    config = tmp_path / "ernet.yaml"
    config.write_text(
        "name: ernet-sample\n"
        f"output_dir: {tmp_path / 'runs'}\n"
        f"data: {{manifest: {split_csv}, root: {breakhis_root}, image_size: 32, augmentation: ernet}}\n"
        "model: {name: tinycnn, weights: null}\n"
        "train: {batch_size: 4, epochs: 1, loss: binary_crossentropy,\n"
        "        optimizer: {name: adam, learning_rate: 1.0e-4, beta_1: 0.6, beta_2: 0.8}}\n"
    )
    assert main(["train", "--config", str(config), "--folds", "0,1,2,3,4", "--quiet"]) == 0
    runs = sorted((tmp_path / "runs").glob("fold_*"))
    assert [r.name for r in runs] == [f"fold_{k}" for k in range(5)]
    for k, run in enumerate(runs):
        used = pd.read_csv(run / "split.csv")
        expected_val = split[(split["fold"] == k) & (split["split"] != "test")]["path"]
        assert set(used.loc[used["split"] == "val", "path"]) == set(expected_val)

    out = tmp_path / "aggregate"
    assert main(["aggregate", *map(str, runs), "--out", str(out)]) == 0
    agg = json.loads((out / "aggregate.json").read_text())
    per_run = [json.loads((r / "metrics.json").read_text())["accuracy"] for r in runs]
    accuracy = agg["metrics"]["accuracy"]
    assert accuracy["n"] == 5
    assert accuracy["mean"] == pytest.approx(np.mean(per_run))
    assert accuracy["std"] == pytest.approx(np.std(per_run, ddof=1))
    assert (out / "curves.png").exists()
