"""DT Grad-CAM: Otsu threshold from OpenCV, zero at or below it, noise averaging, morphology."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from breastcam.explain import DTGradCAM, GradCAM, get_cam
from breastcam.explain.dtgradcam import average_noisy_maps, default_kernel_size, noise_weights


def _opencv_otsu(map01: np.ndarray) -> tuple[float, np.ndarray]:
    u8 = np.clip(np.rint(map01 * 255), 0, 255).astype(np.uint8)
    t, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return t, u8


def test_v1_is_gradcam_cut_at_its_otsu_threshold(cnn, cnn_images):
    dt = DTGradCAM(cnn, version=1)
    out = dt(cnn_images)
    grad = GradCAM(cnn)(cnn_images)
    np.testing.assert_allclose(dt.last_averaged_, grad, atol=1e-6)
    for i, m in enumerate(grad):
        t, u8 = _opencv_otsu(dt.last_averaged_[i])
        assert dt.last_thresholds_[i] == t
        assert 0 < t < 255
        np.testing.assert_array_equal(out[i] == 0, (u8 <= t) | (dt.last_averaged_[i] == 0))
        np.testing.assert_allclose(out[i][u8 > t], dt.last_averaged_[i][u8 > t])


def test_v2_without_morphology_is_zero_exactly_at_or_below_threshold(cnn, cnn_images):
    dt = get_cam("dtgradcam", cnn, n_samples=4, kernel_size=0)
    out = dt(cnn_images)
    for i in range(len(out)):
        t, u8 = _opencv_otsu(dt.last_averaged_[i])
        assert dt.last_thresholds_[i] == t
        np.testing.assert_array_equal(out[i] == 0, u8 <= t)
        np.testing.assert_array_equal(dt.last_masks_[i], u8 > t)


def _raw_gradcam(model, images, target, layer="features"):
    """ReLU(sum_k alpha_k A^k) resized to the input, NOT normalised (paper 001 eq. 6)."""
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.get_layer("logits").output])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        acts, logits = probe(x, training=False)
        score = logits[:, int(target)]
    grads = tape.gradient(score, acts)
    low = tf.nn.relu(tf.einsum("bhwc,bc->bhw", acts, tf.reduce_mean(grads, axis=[1, 2])))
    return tf.image.resize(low[..., None], images.shape[1:3], method="bilinear")[..., 0].numpy()


def _minmax(m):
    return (m - m.min()) / (m.max() - m.min())


@pytest.mark.parametrize("average", ["raw", "normalised"])
def test_v2_average_is_the_weighted_mean_of_noisy_gradcams(cnn, cnn_images, average):
    # paper 001 eq. 8 averages the raw noisy maps ("raw", the default); "normalised" first
    # min-max normalises each noisy map (breastcam's earlier behaviour, kept as an option)
    n, sigma = 4, 0.1
    dt = DTGradCAM(cnn, n_samples=n, sigma=sigma, seed=3, average=average)
    dt(cnn_images[:2])
    targets = dt.last_targets_
    noise = np.random.default_rng(3).standard_normal((n, 32, 32, 3), dtype=np.float32)
    w = np.linspace(1, 0.5, n) / np.linspace(1, 0.5, n).sum()
    np.testing.assert_allclose(noise_weights(n), w, rtol=1e-6)
    for i, x in enumerate(cnn_images[:2]):
        copies = x[None] + sigma * (x.max() - x.min()) * noise
        maps = _raw_gradcam(cnn, copies, targets[i])
        if average == "normalised":
            maps = np.stack([_minmax(m) for m in maps])
        np.testing.assert_allclose(dt.last_averaged_[i], _minmax(np.tensordot(w, maps, axes=1)), atol=1e-5)


def test_v2_default_is_eq8_raw_average_not_the_normalised_one():
    # hand-worked: map 1 is strong at pixel A, map 2 weak at pixel B (weights 2/3, 1/3 for N=2)
    maps = np.zeros((1, 2, 2, 2), np.float32)
    maps[0, 0, 0, 0] = 10.0  # noisy map 1: 10 at A
    maps[0, 1, 1, 1] = 1.0  # noisy map 2: 1 at B
    raw = average_noisy_maps(maps).numpy()[0]  # (2/3 * 10, 1/3 * 1) -> normalised (1, 1/20)
    np.testing.assert_allclose([raw[0, 0], raw[1, 1]], [1.0, 0.05], atol=1e-6)
    per_map = average_noisy_maps(maps, "normalised").numpy()[0]  # (2/3, 1/3) -> (1, 0.5)
    np.testing.assert_allclose([per_map[0, 0], per_map[1, 1]], [1.0, 0.5], atol=1e-6)
    with pytest.raises(ValueError, match="average"):
        average_noisy_maps(maps, "mean")


def test_v2_default_average_is_raw(cnn):
    assert DTGradCAM(cnn).average == "raw"
    with pytest.raises(ValueError, match="eq. 8"):
        DTGradCAM(cnn, average="median")


def test_v2_default_cleans_the_kept_region_with_opening_then_closing(cnn, cnn_images):
    dt = DTGradCAM(cnn, n_samples=4)
    out = dt(cnn_images)
    k = default_kernel_size(32, 32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    for i in range(len(out)):
        t, u8 = _opencv_otsu(dt.last_averaged_[i])
        mask = cv2.morphologyEx((u8 > t).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel).astype(bool)
        np.testing.assert_array_equal(dt.last_masks_[i], mask)
        np.testing.assert_array_equal(out[i], np.where(mask, dt.last_averaged_[i], 0))


def test_seeded_and_parameterised(cnn, cnn_images):
    a = DTGradCAM(cnn, n_samples=3, seed=1)(cnn_images[:2])
    b = DTGradCAM(cnn, n_samples=3, seed=1)(cnn_images[:2])
    c = DTGradCAM(cnn, n_samples=3, seed=2)(cnn_images[:2])
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0
    assert [default_kernel_size(s, s) for s in (224, 96, 32, 448)] == [5, 3, 1, 9]
    with pytest.raises(ValueError, match="version"):
        DTGradCAM(cnn, version=3)


def test_constant_map_gives_zeros_and_no_nan():
    import keras

    inp = keras.Input((16, 16, 3))
    feat = keras.layers.Conv2D(4, 1, kernel_initializer="zeros", bias_initializer="ones", name="flat")(inp)
    x = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(feat))
    model = keras.Model(inp, keras.layers.Activation("softmax")(x))
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    for version in (1, 2):
        out = DTGradCAM(model, version=version, n_samples=2)(x)
        assert np.isfinite(out).all() and not out.any()
