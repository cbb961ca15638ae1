"""Mixed precision and XLA: a few steps train to a finite loss, save/reload, and CAMs stay float32.

``mixed_bfloat16`` is the policy ``train.mixed_precision: true`` picks on a CPU; ``mixed_float16``
(the GPU choice) has no fast CPU kernels, so it is checked for the model graph only.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from breastcam import models
from _splits import synthetic_split
from breastcam.explain import get_cam
from breastcam.train import run
from breastcam.train.runtime import precision_policy


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")
    tf.config.experimental.enable_op_determinism()  # the run below turned it off


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return synthetic_split(tmp_path_factory.mktemp("precision"), n_patients=6, size=48)


def test_true_picks_bfloat16_on_cpu_and_names_are_checked():
    assert precision_policy(False) == "float32"
    assert precision_policy(True) == "mixed_bfloat16"  # no GPU on CI machines
    assert precision_policy("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="mixed_precision"):
        precision_policy("half")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_probabilities_are_float32_under_mixed_policy(policy, restore_policy):
    keras.mixed_precision.set_global_policy(policy)
    model = models.build("tinycnn", num_classes=3, input_shape=(32, 32, 3))
    assert model.get_layer("block2_conv").compute_dtype == policy.split("_")[1]
    probs = model(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32"))
    assert probs.dtype == "float32"
    np.testing.assert_allclose(np.asarray(probs).sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # about 23 s on 2 cores: XLA compiles the bfloat16 step
def test_bfloat16_with_xla_trains_saves_reloads_and_explains(split, tmp_path, restore_policy):
    split_csv, data_root = split
    out = run({
        "output_dir": str(tmp_path / "run"),
        "data": {"manifest": str(split_csv), "root": str(data_root), "image_size": 32},
        "model": {"name": "tinycnn"},
        # deterministic off: Keras silently drops XLA while op determinism is on
        "train": {"batch_size": 4, "epochs": 2, "mixed_precision": True, "jit_compile": True,
                  "deterministic": False, "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    }, verbose=0)
    info = json.loads((out / "run_info.json").read_text())
    assert info["precision"] == "mixed_bfloat16" and info["jit_compile"] is True
    history = pd.read_csv(out / "history.csv")
    assert np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()

    keras.mixed_precision.set_global_policy("float32")  # loading must not depend on the global policy
    model = keras.saving.load_model(out / "best.keras", safe_mode=True)
    assert model.get_layer("block2_conv").compute_dtype == "bfloat16"
    images = np.random.default_rng(1).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    probs = model.predict(images, verbose=0)
    assert probs.dtype == np.float32 and np.isfinite(probs).all()
    for method in ("gradcam", "dtgradcam"):
        maps = get_cam(method, model)(images)
        assert maps.dtype == np.float32 and maps.shape == (3, 32, 32)
        assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0


def test_jit_compile_under_determinism_is_recorded_as_off(split, tmp_path):
    split_csv, data_root = split
    with pytest.warns(UserWarning, match="jit_compile"):
        out = run({
            "output_dir": str(tmp_path / "run"),
            "data": {"manifest": str(split_csv), "root": str(data_root), "image_size": 32},
            "model": {"name": "tinycnn"},
            "train": {"batch_size": 4, "epochs": 1, "jit_compile": True},
        }, verbose=0)
    assert json.loads((out / "run_info.json").read_text())["jit_compile"] is False
