"""weights.py: offline ImageNet failure, file paths, copying by name (small models only)."""

from __future__ import annotations

import time
import urllib.error

import keras
import numpy as np
import pytest

from breastcam import models
from breastcam.models.weights import (
    WeightsUnavailableError,
    apply_weights,
    copy_weights_by_name,
    load_application,
)


def _tiny(name: str, units: int = 4, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    x = keras.layers.Dense(units, name="shared")(inputs)
    x = keras.layers.Dense(2, name=f"{name}_own")(x)
    return keras.Model(inputs, x, name=name)


def test_models_weights_offline_imagenet_fails_fast_with_ways_forward():
    # This machine (and CI) has no network: the real download path must fail quickly and say
    # what to do instead.
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        models.build("resnet50", 2, weights="imagenet")
    assert time.perf_counter() - start < 30
    message = str(info.value)
    assert "weights=None" in message and ".weights.h5" in message and "~/.keras/models" in message
    assert "could not be downloaded" in message


def test_models_weights_fetch_errors_become_weights_unavailable():
    def offline_app(**kwargs):
        raise urllib.error.URLError("no route to host")

    with pytest.raises(WeightsUnavailableError, match="no route to host"):
        load_application(offline_app, input_shape=(32, 32, 3), weights="imagenet")


def test_models_weights_build_errors_are_not_disguised():
    def bad_app(**kwargs):
        raise ValueError("input_shape too small")

    with pytest.raises(ValueError, match="input_shape too small") as info:
        load_application(bad_app, input_shape=(8, 8, 3), weights="imagenet")
    assert not isinstance(info.value, WeightsUnavailableError)


@pytest.mark.parametrize("name", ["resnet50", "dalaresnet50", "vgg16", "densenet121"])
def test_models_weights_missing_file_is_named(name, tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        models.build(name, 2, input_shape=(32, 32, 3), weights=str(missing))


def test_models_weights_rejects_unknown_values():
    model = _tiny("a")
    with pytest.raises(ValueError, match="None, 'imagenet' or a path"):
        apply_weights(model, 3)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        apply_weights(model, "imagenet")


def test_models_weights_copy_by_name_copies_matching_layers_only():
    src, dst = _tiny("src", seed=1), _tiny("dst", seed=2)
    copied = copy_weights_by_name(src, dst)
    assert copied == ["shared"]
    np.testing.assert_array_equal(dst.get_layer("shared").get_weights()[0], src.get_layer("shared").get_weights()[0])
    assert not np.array_equal(dst.get_layer("dst_own").get_weights()[0], src.get_layer("src_own").get_weights()[0])
    # same name, other shape: skipped; nothing left -> an error
    with pytest.raises(ValueError, match="no weights copied"):
        copy_weights_by_name(_tiny("x", units=5), _tiny("y", units=4))


def test_models_weights_apply_imagenet_uses_source_and_file_mismatch_is_named(tmp_path):
    src, dst = _tiny("src", seed=1), _tiny("dst", seed=2)
    apply_weights(dst, "imagenet", imagenet_source=lambda: src)
    np.testing.assert_array_equal(dst.get_layer("shared").get_weights()[1], src.get_layer("shared").get_weights()[1])

    path = tmp_path / "other.weights.h5"
    _tiny("other", units=7).save_weights(str(path))
    with pytest.raises(ValueError, match="other.weights.h5"):
        apply_weights(_tiny("mine"), str(path))
