"""MC dropout: the clone drops at test time, shares the trained weights, leaves batch
normalisation in inference mode (its moving statistics untouched) and refuses a model without
dropout; nested models are searched."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from breastcam.errors import UsageError
from breastcam.models.mc_dropout import MCDropout, dropout_layers, with_mc_dropout


def _net(dropout: float = 0.5, nested: bool = False) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="drop")(x)
    body = keras.Model(inputs, x, name="body")
    if not nested:
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(x))
    outer_in = keras.Input((8, 8, 3))
    return keras.Model(outer_in, keras.layers.Dense(2, activation="softmax", name="head")(body(outer_in)))


@pytest.mark.parametrize("nested", [False, True])
def test_mc_clone_samples_shares_weights_and_keeps_bn_statistics(nested):
    model = _net(nested=nested)
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    mc = with_mc_dropout(model, seed=3)
    assert any(isinstance(layer, MCDropout) for layer in dropout_layers(mc))
    bn = next(w for w in model.weights if "moving_mean" in w.path)
    before = np.asarray(bn).copy()
    a, b = np.asarray(mc(x, training=False)), np.asarray(mc(x, training=False))
    assert np.abs(a - b).max() > 1e-6  # a new draw per call
    np.testing.assert_allclose(np.asarray(bn), before)  # inference mode: statistics untouched
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(_plain(model)(x)), atol=1e-6)  # the original is unchanged
    head = model.get_layer("head")
    model_ids = {id(w) for w in model.weights}
    assert all(id(w) in model_ids for w in mc.weights)  # the same variables, not copies
    head.kernel.assign(np.zeros_like(head.kernel))
    np.testing.assert_allclose(np.asarray(mc(x, training=False)), 0.5, atol=1e-6)


def _plain(model):
    return lambda x: model(x, training=False)


def test_a_model_without_dropout_is_refused_with_its_name():
    model = _net(dropout=0.0)
    assert dropout_layers(model) == []
    with pytest.raises(UsageError, match="has no Dropout layer.*tta:K"):
        with_mc_dropout(model)
