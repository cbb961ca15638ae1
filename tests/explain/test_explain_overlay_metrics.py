"""Overlays are RGB; mask metrics on known masks; deletion/insertion curves on a known model."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest

from breastcam.explain import deletion_insertion, mask_metrics, mask_metrics_batch, overlay
from breastcam.explain.faithfulness import to_frame
from breastcam.explain.metrics import binarize


def test_overlay_is_rgb_red_where_the_map_is_high():
    image = np.full((40, 60, 3), 128, np.uint8)
    cam = np.zeros((10, 15), np.float32)
    cam[:, 10:] = 1.0  # right third hot, left cold
    original, heat, blended = overlay(image, cam)
    assert original.shape == heat.shape == blended.shape == (40, 60, 3)
    assert heat.dtype == blended.dtype == np.uint8
    hot, cold = heat[20, 55], heat[20, 5]
    assert hot[0] > 100 and hot[2] < 30  # red in RGB order (OpenCV alone would give blue here)
    assert cold[2] > 100 and cold[0] < 30  # jet's low end is blue
    expected = np.clip(np.rint(0.5 * heat + 0.5 * original.astype(float)), 0, 255)
    np.testing.assert_allclose(blended, expected, atol=1)  # rounding of ties: within 1 grey level
    _, _, quarter = overlay(image, cam, alpha=0.25)  # alpha weighs the heatmap, 1 - alpha the image
    np.testing.assert_allclose(quarter, np.rint(0.25 * heat + 0.75 * original.astype(float)), atol=1)
    # Grey input and alpha.
    _, _, only_heat = overlay(np.zeros((40, 60), np.uint8), cam, alpha=1.0)
    np.testing.assert_array_equal(only_heat, heat)
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, cam, alpha=2)


def test_overlay_heatmap_matches_opencv_jet_converted_to_rgb():
    cam = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    _, heat, _ = overlay(np.zeros((8, 8, 3), np.uint8), cam)
    bgr = cv2.applyColorMap(np.rint(cam * 255).astype(np.uint8), cv2.COLORMAP_JET)
    np.testing.assert_array_equal(heat, bgr[..., ::-1])


def test_mask_metrics_on_known_masks():
    cam = np.zeros((10, 10), np.float32)
    cam[0:4, 0:5] = 0.9  # prediction: 20 pixels
    mask = np.zeros((10, 10), bool)
    mask[2:6, 0:5] = True  # truth: 20 pixels, 10 shared
    m = mask_metrics(cam, mask, threshold=0.5)
    assert m["iou"] == pytest.approx(10 / 30)
    assert m["dice"] == pytest.approx(20 / 40)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    # Otsu on a two-level map separates the levels: same result.
    assert mask_metrics(cam, mask) == pytest.approx(m)
    # Perfect and disjoint.
    assert mask_metrics(mask.astype(np.float32), mask)["iou"] == 1.0
    assert mask_metrics(1.0 - mask, mask, threshold=0.5)["dice"] == 0.0
    # The map is resized to the mask: a 5x5 map against a 10x10 mask.
    small = np.zeros((5, 5), np.float32)
    small[1:3, :] = 1.0
    big = np.zeros((10, 10), bool)
    big[2:6, :] = True
    assert binarize(small, 0.5, (10, 10)).sum() == pytest.approx(big.sum(), abs=10)
    assert mask_metrics(small, big, threshold=0.5)["iou"] > 0.7
    # Empty conventions.
    assert mask_metrics(np.zeros((4, 4)), np.zeros((4, 4)), threshold=0.5)["iou"] == 1.0
    assert mask_metrics(np.zeros((4, 4)), np.ones((4, 4)), threshold=0.5)["precision"] == 0.0


def test_mask_metrics_batch_frame():
    cams = np.stack([np.eye(6, dtype=np.float32), np.ones((6, 6), np.float32)])
    frame = mask_metrics_batch(cams, [np.eye(6), None], threshold=0.5, ids=["a", "b"])
    assert list(frame.columns) == ["id", "iou", "dice", "precision", "recall", "f1"]
    assert frame.loc[0, "iou"] == 1.0 and frame.loc[1].drop("id").isna().all()


def _left_half_model():
    """Logit 1 - logit 0 = 10 * (mean of channel 0 over the left half): only the left half matters."""
    inp = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(1, (1, 1), use_bias=False)
    x = keras.layers.Cropping2D(((0, 0), (0, 4)))(conv(inp))
    x = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, keras.layers.Activation("softmax")(x))
    conv.set_weights([np.ones((1, 1, 1, 1), np.float32)])
    model.get_layer("logits").set_weights([np.array([[0.0, 10.0]], np.float32), np.zeros(2, np.float32)])
    return model


def test_deletion_insertion_curves_reward_the_true_evidence():
    model = _left_half_model()
    x = np.ones((2, 8, 8, 1), np.float32)
    good = np.zeros((8, 8), np.float32)
    good[:, :4] = 1.0  # the left half, which drives the score
    bad = 1.0 - good
    r = deletion_insertion(model, x, np.stack([good, bad]), targets=[1, 1], steps=4, baseline="zero")
    p_full = 1 / (1 + np.exp(-10.0))
    np.testing.assert_allclose(r["fractions"], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(r["deletion"][:, 0], p_full, rtol=1e-5)
    np.testing.assert_allclose(r["deletion"][:, -1], 0.5, rtol=1e-5)  # all deleted: equal logits
    np.testing.assert_allclose(r["insertion"][:, 0], 0.5, rtol=1e-5)
    np.testing.assert_allclose(r["insertion"][:, -1], p_full, rtol=1e-5)
    # The good map deletes the evidence first (faster fall) and inserts it first (faster rise).
    assert r["deletion_auc"][0] < r["deletion_auc"][1]
    assert r["insertion_auc"][0] > r["insertion_auc"][1]
    np.testing.assert_allclose(r["deletion_auc"], np.trapezoid(r["deletion"], r["fractions"], axis=1))
    # Half deleted by the good map: left half gone -> 0.5 exactly.
    assert r["deletion"][0, 2] == pytest.approx(0.5, abs=1e-6)
    frame = to_frame(r, ids=["good", "bad"])
    assert list(frame["id"]) == ["good", "bad"] and list(frame["target"]) == [1, 1]


def test_deletion_insertion_baselines_and_batching(cnn, cnn_images):
    from breastcam.explain import get_cam

    maps = get_cam("gradcam", cnn)(cnn_images)
    whole = deletion_insertion(cnn, cnn_images, maps, steps=5, baseline="blur", batch_size=64)
    parts = deletion_insertion(cnn, cnn_images, maps, steps=5, baseline="blur", batch_size=7)
    np.testing.assert_allclose(whole["deletion"], parts["deletion"], atol=1e-5)
    probs = cnn.predict(cnn_images, verbose=0)
    np.testing.assert_allclose(whole["deletion"][:, 0], probs.max(axis=1), atol=1e-5)
    for baseline in ("mean", 0.25):
        r = deletion_insertion(cnn, cnn_images[:1], maps[:1], steps=2, baseline=baseline)
        assert np.isfinite(r["insertion_auc"]).all()
