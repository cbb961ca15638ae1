"""Attention modules, the inception module and the logits contract on tiny inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from breastcam.models.heads import classification_head, logits_model
from breastcam.models.layers import dala_attention, squeeze_excite
from breastcam.models.vgg_inception import naive_inception


def _module(fn, channels, **kwargs):
    inputs = keras.Input((3, 3, channels))
    return keras.Model(inputs, fn(inputs, **kwargs))


def test_models_layers_dala_module_has_paper_parameter_count():
    # SPEC §3: 2*2048*128 + 128 + 2048
    assert _module(dala_attention, 2048).count_params() == 526_464
    assert _module(dala_attention, 256).count_params() == 2 * 256 * 16 + 16 + 256


def test_models_layers_dala_gate_values():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 32)).astype("float32")
    relu = _module(dala_attention, 32, reduction=4)
    sig = _module(dala_attention, 32, reduction=4, gate="sigmoid")
    sig.set_weights(relu.get_weights())
    # recompute the gate by hand from the module's weights
    w1, b1, w2, b2 = relu.get_weights()
    h = x.mean(axis=(1, 2)) @ w1 + b1
    h = np.where(h > 0, h, 0.01 * h)
    s = h @ w2 + b2
    np.testing.assert_allclose(relu(x), x * np.maximum(s, 0)[:, None, None, :], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sig(x), x * (1 / (1 + np.exp(-s)))[:, None, None, :], rtol=1e-5, atol=1e-6)


def test_models_layers_bad_options_are_explained():
    with pytest.raises(ValueError, match="gate"):
        _module(dala_attention, 32, gate="tanh")
    with pytest.raises(ValueError, match="reduction must divide"):
        _module(squeeze_excite, 30, reduction=16)


def test_models_layers_se_counts_with_and_without_bias():
    assert _module(squeeze_excite, 2048).count_params() == 526_464
    assert _module(squeeze_excite, 2048, use_bias=False).count_params() == 2 * 2048 * 128


def test_models_layers_naive_inception_keeps_pooled_channels():
    inputs = keras.Input((8, 8, 16))
    out = naive_inception(inputs, (4, 8, 2))
    assert tuple(out.shape) == (None, 8, 8, 4 + 8 + 2 + 16)
    out = naive_inception(inputs, (4, 8, 2), pool_proj=3, name="proj")
    assert tuple(out.shape) == (None, 8, 8, 17)


def test_models_layers_logits_model_returns_pre_softmax_scores():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, classification_head(inputs, 3, dropout=0.5), name="toy")
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 8)).astype("float32")
    logits = np.asarray(logits_model(model)(x))
    probs = np.asarray(model(x))
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5)
    assert not np.allclose(logits, probs)
    features, logits2 = logits_model(model, "avg_pool")(x)
    np.testing.assert_allclose(features, x.mean(axis=(1, 2)), rtol=1e-5)
    with pytest.raises(ValueError, match="logits"):
        logits_model(keras.Model(inputs, keras.layers.Flatten()(inputs)))
