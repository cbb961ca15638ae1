"""``data.augment_on: device``: the recipe's Keras layers run inside the training step.

Both modes train; the saved ``best.keras`` is the plain model (no augmentation layers); the
device wrapper applies the same operations as the host augmenter; recipes that cannot run on
the device (ernet's Augmentor step) are refused with a clear error.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from breastcam.augment import get_recipe, get_recipe_layers
from _splits import synthetic_split
from breastcam.data.pipeline import make_dataset
from breastcam.errors import ConfigError, DataError
from breastcam.models import load_model
from breastcam.train import load_config, run
from breastcam.train.device_augment import DeviceAugmented


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return synthetic_split(tmp_path_factory.mktemp("device_augment"), n_patients=4, size=40)


def test_device_layers_apply_the_host_recipe():
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    host = np.asarray(get_recipe("dala", seed=3)(images))
    wrapper = DeviceAugmented(keras.Sequential([keras.layers.Flatten()]),
                              get_recipe_layers("dala", seed=3), "none")
    device = np.asarray(wrapper.augment(images))
    assert [type(layer).__name__ for layer in wrapper.augmenters] == ["RandomRotation", "RandomFlip"]
    assert np.abs(device - images).max() > 1.0  # it did augment
    np.testing.assert_allclose(device, host, atol=1e-3)  # same ops, same seed, same draw


def test_recipes_without_device_layers():
    assert get_recipe_layers("none") == [] and get_recipe_layers("modres") == []
    with pytest.raises(ConfigError, match="augment_on: host"):
        get_recipe_layers("ernet")
    with pytest.raises(DataError, match="unknown augmentation recipe"):
        get_recipe_layers("mixup")


def test_config_checks_augment_on(split):
    with pytest.raises(ConfigError, match="augment_on"):
        load_config({"data": {"manifest": str(split[0]), "augment_on": "gpu"}})


def test_uint8_output_is_raw_and_needs_no_preprocessing(split):
    split_csv, data_root = split
    df = pd.read_csv(split_csv)
    images, _ = next(iter(make_dataset(df, data_root, image_size=(32, 32), batch_size=4,
                                       preprocessing="none", output_dtype="uint8")))
    floats, _ = next(iter(make_dataset(df, data_root, image_size=(32, 32), batch_size=4,
                                       preprocessing="none")))
    assert images.dtype == "uint8"
    np.testing.assert_allclose(np.asarray(images, "float32"), np.asarray(floats), atol=0)
    with pytest.raises(DataError, match="preprocessing='none'"):
        make_dataset(df, data_root, output_dtype="uint8")


@pytest.mark.parametrize("where", ["host", "device"])
def test_both_modes_train_and_save_the_plain_model(split, tmp_path, where):
    split_csv, data_root = split
    out = run({
        "output_dir": str(tmp_path / where),
        "data": {"manifest": str(split_csv), "root": str(data_root), "image_size": 32,
                 "augmentation": "dala", "augment_on": where},
        "model": {"name": "tinycnn"},
        "train": {"batch_size": 4, "epochs": 1, "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    }, verbose=0)
    info = json.loads((out / "run_info.json").read_text())
    assert info["augment_on"] == where
    assert np.isfinite(pd.read_csv(out / "history.csv")[["loss", "val_loss"]].to_numpy()).all()
    model = load_model(out / "best.keras")
    assert model.name == "tinycnn"
    names = [type(layer).__name__ for layer in model._flatten_layers()]
    assert not [n for n in names if n.startswith("Random") or n == "DeviceAugmented"], names
    plain = keras.models.clone_model(model)
    plain.load_weights(out / "last.weights.h5")  # last.weights.h5 is the plain model's, too
