"""Score-CAM and Eigen-CAM against plain NumPy references; no NaN on constant maps."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from breastcam.explain import EigenCAM, ScoreCAM, get_cam


def _normalise(m):
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi - lo > 1e-6 * max(abs(hi), abs(lo)) else np.zeros_like(m)


def _features_and_logits(model):
    return keras.Model(model.inputs[0], [model.get_layer("features").output, model.get_layer("logits").output])


def _resize(m, size):
    return tf.image.resize(m[None, ..., None], size, method="bilinear")[0, ..., 0].numpy()


@pytest.mark.parametrize("top_k", [5, None])
def test_scorecam_matches_a_per_channel_loop(cnn, cnn_images, top_k):
    x = cnn_images[:2]
    cam = ScoreCAM(cnn, top_k=top_k, batch_size=16)
    maps = cam(x)
    probe = _features_and_logits(cnn)
    acts, logits = (t.numpy() for t in probe(x))
    for i in range(len(x)):
        target = logits[i].argmax()
        channels = np.argsort(-acts[i].mean(axis=(0, 1)), kind="stable")
        channels = channels[: (top_k or acts.shape[-1])]
        scores = []
        for c in channels:
            mask = _normalise(_resize(acts[i, ..., c], (32, 32)))
            scores.append(probe(x[i:i + 1] * mask[None, ..., None])[1].numpy()[0, target])
        w = np.exp(np.array(scores) - max(scores))
        w /= w.sum()
        low = np.maximum(np.tensordot(acts[i][..., channels], w, axes=([2], [0])), 0)
        np.testing.assert_allclose(maps[i], _normalise(_resize(low, (32, 32))), atol=1e-4)


def _duplicated_channels_model():
    """A CAM layer of 6 channels: 0-2 are positive multiples of one map (ReLU(a x), a > 0), 3 and 4
    are constant, 5 is its own: 3 distinct masks, so 3 masked passes instead of 6."""
    inp = keras.Input((16, 16, 3))
    base = keras.layers.Conv2D(1, 3, padding="same", name="base")(inp)
    scaled = [keras.layers.ReLU()(keras.layers.Rescaling(a)(base)) for a in (1.0, 2.5, 0.3)]
    const = keras.layers.Conv2D(2, 1, kernel_initializer="zeros", bias_initializer="ones")(inp)
    own = keras.layers.Conv2D(1, 3, padding="same", activation="relu", name="own")(inp)
    feat = keras.layers.Concatenate(name="features")([*scaled, const, own])
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(feat))
    return keras.Model(inp, keras.layers.Softmax()(logits))


def test_scorecam_scores_each_distinct_mask_once_and_the_maps_are_unchanged():
    keras.utils.set_random_seed(3)
    model = _duplicated_channels_model()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    cam = ScoreCAM(model, "features", top_k=None, batch_size=4)
    maps = cam(x)
    assert cam.last_passes_ <= 2 * 3  # 3 distinct masks per image (fewer if ReLU zeroed one)
    probe = _features_and_logits(model)
    acts, logits = (t.numpy() for t in probe(x))
    for i in range(len(x)):  # the reference scores every channel
        target = logits[i].argmax()
        scores = [probe(x[i:i + 1] * _normalise(_resize(acts[i, ..., c], (16, 16)))[None, ..., None])[1].numpy()[0, target]
                  for c in range(6)]
        w = np.exp(np.array(scores) - max(scores))
        w /= w.sum()
        low = np.maximum(np.tensordot(acts[i], w, axes=([2], [0])), 0)
        np.testing.assert_allclose(maps[i], _normalise(_resize(low, (16, 16))), atol=1e-4)


def test_scorecam_top_k_is_per_image(cnn, cnn_images):
    cam = ScoreCAM(cnn, top_k=3)
    low, _, _ = cam._select_fn(tf.constant(cnn_images), tf.constant([-1] * len(cnn_images), tf.int32))
    acts = _features_and_logits(cnn)(cnn_images)[0].numpy()
    for i in range(len(cnn_images)):
        top = np.argsort(-acts[i].mean(axis=(0, 1)))[:3]
        np.testing.assert_allclose(low.numpy()[i], acts[i][..., top], atol=1e-6)
    assert cam.k == 3 and ScoreCAM(cnn, top_k=1000).k == 24


def _constant_model():
    inp = keras.Input((16, 16, 3))
    feat = keras.layers.Conv2D(4, 1, kernel_initializer="zeros", bias_initializer="ones", name="flat")(inp)
    x = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(feat))
    return keras.Model(inp, keras.layers.Activation("softmax")(x))


@pytest.mark.parametrize("method", ["scorecam", "eigencam", "gradcam", "gradcampp"])
def test_constant_activations_give_zero_maps_not_nan(method):
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    out = get_cam(method, _constant_model())(x)
    assert out.shape == (2, 16, 16) and np.isfinite(out).all() and not out.any()


def test_scorecam_probability_score_and_mean_baseline_run(cnn, cnn_images):
    out = ScoreCAM(cnn, top_k=4, score="probability", baseline="mean")(cnn_images[:2])
    assert np.isfinite(out).all() and out.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="baseline"):
        ScoreCAM(cnn, baseline="black")


def test_eigencam_matches_numpy_svd_with_positive_sign(cnn, cnn_images):
    maps = EigenCAM(cnn)(cnn_images)
    acts = _features_and_logits(cnn)(cnn_images)[0].numpy()
    for i, a in enumerate(acts):
        flat = a.reshape(-1, a.shape[-1])
        centred = flat - flat.mean(axis=0)
        proj = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
        if np.corrcoef(proj, flat.mean(axis=1))[0, 1] < 0:
            proj = -proj
        expected = _normalise(_resize(np.maximum(proj.reshape(a.shape[:2]), 0), (32, 32)))
        np.testing.assert_allclose(maps[i], expected, atol=1e-4)


def test_eigencam_sign_follows_the_mean_activation():
    # Activations = one bright blob in every channel: the map must be high on the blob.
    inp = keras.Input((12, 12, 1))
    feat = keras.layers.Conv2D(6, 1, use_bias=False, name="feat")(inp)
    x = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(feat))
    model = keras.Model(inp, keras.layers.Activation("softmax")(x))
    model.get_layer("feat").set_weights([np.linspace(0.5, 2.0, 6, dtype=np.float32).reshape(1, 1, 1, 6)])
    image = np.zeros((1, 12, 12, 1), np.float32)
    image[0, 3:6, 7:10] = 1.0
    image += np.random.default_rng(0).normal(scale=0.01, size=image.shape).astype(np.float32)
    m = EigenCAM(model)(image)[0]
    assert m[4, 8] == pytest.approx(1.0, abs=0.05) and m[10, 1] < 0.2


def test_eigencam_sign_is_stable_on_layer_normalised_tokens(cnn_images):
    # Transformer token grids are layer-normalised: the channel mean is 0 everywhere, so the
    # correlation rule has nothing to go on and the peak rule decides (the same alone or batched).
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 4, strides=4)(inp)
    x = keras.layers.LayerNormalization(center=False, scale=False, name="tokens")(x)
    x = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, keras.layers.Activation("softmax")(x))
    cam = EigenCAM(model)
    batched = cam(cnn_images)
    single = np.concatenate([cam(img[None]) for img in cnn_images])
    assert np.abs(batched - single).max() < 1e-5
    acts = keras.Model(inp, model.get_layer("tokens").output)(cnn_images).numpy()
    for i, a in enumerate(acts):
        flat = a.reshape(-1, 16)
        centred = flat - flat.mean(axis=0)
        proj = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
        peak = np.unravel_index(np.argmax(np.abs(proj)), (8, 8))
        low = proj.reshape(8, 8) * np.sign(proj.reshape(8, 8)[peak])
        expected = _normalise(_resize(np.maximum(low, 0), (32, 32)))
        np.testing.assert_allclose(batched[i], expected, atol=1e-4)
