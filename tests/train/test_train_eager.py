"""``train.run_eagerly``: an execution choice only (quick runs skip graph tracing); a seeded run
trains to the same weights and predictions as the traced run, and is evaluated eagerly too."""

from __future__ import annotations

import numpy as np
import pandas as pd

from breastcam.data import make_split, make_synthetic, write_split
from breastcam.evaluate.rundir import predict_run
from breastcam.train import run


def test_eager_run_matches_traced_run(tmp_path):
    df = make_synthetic(tmp_path / "data", n_patients=6, images_per_patient=2, image_size=(40, 40), seed=0)
    split = tmp_path / "split.csv"
    write_split(make_split(df, "dala", seed=0), split)
    outs = {}
    for eager in (False, True):
        outs[eager] = run({
            "output_dir": str(tmp_path / f"eager_{eager}"), "seed": 0,
            "data": {"manifest": str(split), "root": str(tmp_path / "data"), "image_size": 32},
            "model": {"name": "tinycnn"},
            "train": {"batch_size": 4, "epochs": 1, "run_eagerly": eager},
        }, verbose=0)
    losses = [pd.read_csv(outs[e] / "history.csv")[["loss", "val_loss"]].to_numpy() for e in (False, True)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4, atol=1e-5)  # float32 op order
    (graph, _), (eager, model) = predict_run(outs[False]), predict_run(outs[True])
    assert model.network.run_eagerly is True  # evaluated as it was trained
    probs = [f.filter(like="prob_").to_numpy() for f in (graph, eager)]
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-4)
