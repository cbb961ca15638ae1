"""Grad-CAM and Grad-CAM++ against closed forms, and the probe's contract checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import CONV_W, DENSE_B, DENSE_W, linear_model

from breastcam.explain import GradCAM, GradCAMPlusPlus, get_cam


def _normalise(m: np.ndarray) -> np.ndarray:
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(3, 8, 8, 2)).astype(np.float32)


def test_gradcam_weights_are_dense_weight_over_hw(inputs):
    model = linear_model()
    cam = get_cam("gradcam", model)
    assert cam.layer == "cam"  # the last 4-D layer of an unregistered model
    for target in (0, 1):
        maps = cam(inputs, targets=target)
        acts = inputs @ CONV_W  # 1x1 conv
        weights = DENSE_W[:, target] / (8 * 8)  # d logit / d A[i, j, k] = W[k, c] / (H W)
        expected = np.stack([_normalise(np.maximum(a @ weights, 0)) for a in acts])
        np.testing.assert_allclose(maps, expected, atol=1e-5)
        np.testing.assert_array_equal(cam.last_targets_, [target] * 3)


def test_gradcam_low_resolution_map_is_resized_bilinearly(inputs):
    model = linear_model(strides=2)
    maps = GradCAM(model)(inputs, targets=[1, 0, 1])
    acts = inputs[:, ::2, ::2] @ CONV_W
    expected = []
    for a, t in zip(acts, [1, 0, 1]):
        low = np.maximum(a @ (DENSE_W[:, t] / 16), 0)
        up = tf.image.resize(low[None, ..., None], (8, 8), method="bilinear")[0, ..., 0].numpy()
        expected.append(_normalise(up))
    assert maps.shape == (3, 8, 8) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, np.stack(expected), atol=1e-5)


def test_default_target_is_the_predicted_class(inputs):
    model = linear_model()
    cam = get_cam("gradcam", model)
    cam(inputs)
    logits = (inputs @ CONV_W).mean(axis=(1, 2)) @ DENSE_W + DENSE_B
    np.testing.assert_array_equal(cam.last_targets_, logits.argmax(-1))
    np.testing.assert_allclose(cam.last_probabilities_, model.predict(inputs, verbose=0), atol=1e-5)


def test_gradcampp_closed_form(inputs):
    model = linear_model()
    maps = GradCAMPlusPlus(model)(inputs, targets=0)
    acts = inputs @ CONV_W
    g = DENSE_W[:, 0] / 64.0  # the same at every position
    expected = []
    for a in acts:
        sum_a = a.sum(axis=(0, 1))
        alpha = g**2 / (2 * g**2 + sum_a * g**3 + 1e-7)
        weights = 64.0 * alpha * np.maximum(g, 0)
        expected.append(_normalise(np.maximum(a @ weights, 0)))
    np.testing.assert_allclose(maps, np.stack(expected), atol=1e-5)


def test_logits_of_a_dense_softmax_head_are_recovered(inputs):
    # A model whose final Dense has the softmax inside: the probe recomputes x @ W + b.
    inp = keras.Input((8, 8, 2))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="cam")
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inp, dense(keras.layers.GlobalAveragePooling2D()(conv(inp))))
    conv.set_weights([CONV_W[None, None]])
    dense.set_weights([DENSE_W, DENSE_B])
    np.testing.assert_allclose(GradCAM(model)(inputs, 1), GradCAM(linear_model())(inputs, 1), atol=1e-6)


def test_a_cam_layer_that_is_not_4d_is_refused():
    model = linear_model()
    with pytest.raises(ValueError, match=r"need.*\(batch, height, width, channels\) map"):
        get_cam("gradcam", model, layer=model.layers[-3].name)  # the GAP output: (batch, 3)
    with pytest.raises(ValueError, match="no layer named"):
        get_cam("gradcam", model, layer="nope")
    with pytest.raises(ValueError, match="unknown CAM method"):
        get_cam("gradcam3", model)


def test_one_trace_serves_every_batch_size(inputs):
    cam = GradCAM(linear_model())
    for n in (1, 3, 2):
        assert cam(inputs[:n]).shape == (n, 8, 8)
    assert cam._compiled.experimental_get_tracing_count() == 1
