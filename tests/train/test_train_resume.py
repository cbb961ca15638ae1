"""A run killed with SIGKILL during epoch 3 of 5 resumes there and ends as if never stopped."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from breastcam.data import make_split, make_synthetic, write_split

pytestmark = pytest.mark.slow

EPOCHS = 5


@pytest.fixture(scope="module")
def split_csv(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    df = make_synthetic(root / "data", n_patients=8, images_per_patient=4, image_size=(64, 64), seed=0)
    split = make_split(df, "dala", group="patient", seed=0)
    path = root / "split.csv"
    write_split(split, path)
    return path, root / "data"


def _config(out, split_csv, data_root):
    return {
        "name": "resume-test",
        "output_dir": str(out),
        "seed": 0,
        "data": {"manifest": str(split_csv), "root": str(data_root), "image_size": 48,
                 "augmentation": "dala", "cache": "memory"},
        "model": {"name": "resume_small", "weights": None},
        "train": {"batch_size": 8, "epochs": EPOCHS, "optimizer": {"name": "adam", "learning_rate": 1e-3},
                  "deterministic": True},
    }


SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import keras
    from breastcam.models.registry import register
    from breastcam.train import run

    @register("resume_small", cam_layer="features", input_shape=(48, 48, 3))
    def resume_small(num_classes, input_shape, weights=None):
        # What a resume must carry: BatchNorm moving statistics, a seeded Dropout, Adam's
        # moments; small, so the three trainings take seconds (DALAResNet50 took minutes).
        inp = keras.Input(input_shape)
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inp)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="features")(x)
        x = keras.layers.Dropout(0.5)(keras.layers.GlobalAveragePooling2D()(x))
        x = keras.layers.Dense(num_classes, name="logits")(x)
        out = keras.layers.Activation("softmax", name="probabilities")(x)
        return keras.Model(inp, out, name="resume_small")

    cfg = json.loads(sys.argv[1])
    kill_epoch = int(sys.argv[2])

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == kill_epoch and batch == 0:
                os.kill(os.getpid(), signal.SIGKILL)

    run(cfg, callbacks=[Kill()] if kill_epoch >= 0 else [], verbose=0)
    """
)


def _train(cfg, kill_epoch=-1):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(cfg), str(kill_epoch)],
                          env=env, capture_output=True, text=True, timeout=900)


def _final_weights_digest(run_dir):
    from breastcam.models import load_model

    model = load_model(run_dir / "best.keras")
    model.load_weights(run_dir / "last.weights.h5")
    return np.concatenate([np.ravel(w) for w in model.get_weights()])


def test_killed_run_resumes_at_epoch_3_and_matches(tmp_path, split_csv):
    manifest, data_root = split_csv
    straight = tmp_path / "straight"
    resumed = tmp_path / "resumed"

    done = _train(_config(straight, manifest, data_root))
    assert done.returncode == 0, done.stderr[-3000:]

    killed = _train(_config(resumed, manifest, data_root), kill_epoch=2)  # 0-based: epoch 3 of 5
    assert killed.returncode == -9, killed.stderr[-3000:]
    hist = pd.read_csv(resumed / "history.csv")
    assert list(hist["epoch"]) == [0, 1]  # two epochs finished before the kill
    assert not (resumed / "last.weights.h5").exists()

    again = _train(_config(resumed, manifest, data_root))
    assert again.returncode == 0, again.stderr[-3000:]

    h_straight = pd.read_csv(straight / "history.csv")
    h_resumed = pd.read_csv(resumed / "history.csv")
    assert list(h_resumed["epoch"]) == list(range(EPOCHS))
    for col in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(h_resumed[col], h_straight[col], rtol=1e-5, atol=1e-6, err_msg=col)
    np.testing.assert_allclose(_final_weights_digest(resumed), _final_weights_digest(straight), rtol=1e-5, atol=1e-6)
    timing = json.loads((resumed / "timing.json").read_text())
    assert len(timing["epoch_seconds"]) == EPOCHS
