"""``breastcam.models.load_model``: every foreign or broken file gets one clear ``ModelFileError``
naming it; the registry never lists a partial zoo; a weights file of another model is named."""

from __future__ import annotations

import sys

import cv2
import keras
import numpy as np
import pytest

from breastcam import models
from breastcam.errors import ModelFileError
from breastcam.models import registry


def _tiny(name="tiny", hidden=None):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    if hidden is not None:
        x = hidden(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x), name=name)


def test_load_model_round_trip_of_a_breastcam_layer(tmp_path):
    from breastcam.models.ernet_layers import ERWeightedSum

    inputs = keras.Input((4,))
    out = ERWeightedSum(name="er")([inputs, inputs])
    path = tmp_path / "er.keras"
    keras.Model(inputs, out, name="er_model").save(path)
    loaded = models.load_model(path)
    assert isinstance(loaded.get_layer("er"), ERWeightedSum)


def test_load_model_names_an_unknown_layer_class(tmp_path):
    @keras.saving.register_keras_serializable(package="elsewhere")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    path = tmp_path / "foreign.keras"
    _tiny(hidden=Doubler(name="doubler")).save(path)
    del keras.saving.get_custom_objects()["elsewhere>Doubler"]  # as in a process without that code
    with pytest.raises(ModelFileError) as info:
        models.load_model(path)
    message = str(info.value)
    assert str(path) in message and "'Doubler'" in message and "not a breastcam layer" in message
    assert "ERWeightedSum" in message  # lists what breastcam does define


def test_load_model_explains_that_safe_mode_refuses_a_lambda_layer(tmp_path):
    path = tmp_path / "lambda.keras"
    _tiny(hidden=keras.layers.Lambda(lambda t: t * 2)).save(path)
    with pytest.raises(ModelFileError, match="Lambda layer") as info:
        models.load_model(path)
    assert str(path) in str(info.value) and "safe_mode=True" in str(info.value)


@pytest.mark.parametrize(
    "kind, expected",
    [("text", "a text file"), ("png", "a PNG image"), ("empty", "empty"), ("weights", "HDF5 weights file"),
     ("savedmodel", "exported SavedModel"), ("zip_suffix", "without the .keras suffix")],
)
def test_load_model_says_what_a_non_keras_file_is(kind, expected, tmp_path):
    path = tmp_path / "model.keras"
    if kind == "text":
        path.write_text("not a model\n")
    elif kind == "png":
        cv2.imwrite(str(tmp_path / "x.png"), np.zeros((4, 4, 3), np.uint8))
        (tmp_path / "x.png").rename(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "weights":
        path = tmp_path / "model.weights.h5"
        _tiny().save_weights(path)
    elif kind == "savedmodel":
        path = tmp_path / "export"
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"")
    else:
        _tiny().save(path)
        path = path.rename(tmp_path / "model.zip")
    with pytest.raises(ModelFileError, match=expected) as info:
        models.load_model(path)
    assert str(path) in str(info.value)


def test_load_model_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        models.load_model(tmp_path / "nope.keras")


def test_weights_file_of_another_model_is_named(tmp_path):
    path = tmp_path / "ernet18_3classes.weights.h5"
    models.build("ernet18", 3, (32, 32, 3)).save_weights(path)
    with pytest.raises(ModelFileError) as info:
        models.build("ernet18", 2, (32, 32, 3), weights=str(path))
    message = str(info.value)
    assert str(path) in message and "'ernet18'" in message
    assert "logits/kernel" in message and "(512, 2)" in message and "(512, 3)" in message


def test_registry_names_the_family_that_failed_to_import(monkeypatch):
    # As on a machine without keras-hub: the transformers family cannot import.
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    monkeypatch.delitem(sys.modules, "breastcam.models.transformers")
    monkeypatch.setattr(registry, "_LOADED", False)
    monkeypatch.setattr(registry, "_FAMILY_ERROR", None)
    for call in (registry.names, lambda: registry.build("dalaresnet50", 2), lambda: registry.spec("ernet18")):
        with pytest.raises(registry.ModelFamilyImportError) as info:
            call()
        assert "breastcam.models.transformers" in str(info.value) and "keras_hub" in str(info.value)
