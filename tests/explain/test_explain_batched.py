"""Every method gives the same map for an image alone or inside a batch."""

from __future__ import annotations

import numpy as np
import pytest

from breastcam.explain import get_cam

from _tolerance import assert_thresholded_maps_close

PARAMS = {
    "gradcam": {},
    "gradcampp": {},
    "eigencam": {},
    "scorecam": {"top_k": 6, "batch_size": 8},
    "dtgradcam": {"n_samples": 4},
    "dtgradcam-v1": {"version": 1},
}


def _assert_same_maps(got, want, got_avg=None, want_avg=None):
    """Plain maps within 1e-5. DT Grad-CAM cuts at an Otsu threshold: its un-thresholded
    averages agree within 1e-5, its kept regions by IoU (a pixel on the threshold may flip
    with float32 noise), and the kept values within 1e-5."""
    if got_avg is None:
        assert np.abs(got - want).max() < 1e-5
        return
    assert np.abs(got_avg - want_avg).max() < 1e-5
    assert_thresholded_maps_close(got, want, atol=1e-5)


def _averaged(cam):
    """DT Grad-CAM's map before its threshold (None for the other methods)."""
    return getattr(cam, "last_averaged_", None)


@pytest.mark.parametrize("key", list(PARAMS))
def test_batched_equals_per_image(cnn, cnn_images, key):
    cam = get_cam(key.split("-")[0], cnn, **PARAMS[key])
    batched = cam(cnn_images)
    targets, batched_avg = cam.last_targets_.copy(), _averaged(cam)
    singles = [(cam(img[None]), _averaged(cam)) for img in cnn_images]
    single = np.concatenate([m for m, _ in singles])
    single_avg = None if batched_avg is None else np.concatenate([a for _, a in singles])
    assert batched.shape == (len(cnn_images), 32, 32) and batched.dtype == np.float32
    assert np.isfinite(batched).all() and batched.min() >= 0.0 and batched.max() <= 1.0
    assert batched.max() == pytest.approx(1.0)  # min-max normalised (DT keeps the peak)
    _assert_same_maps(batched, single, batched_avg, single_avg)
    # Chunking (batch_size smaller than the batch) changes nothing either.
    cam.batch_size = 2
    _assert_same_maps(cam(cnn_images), batched, _averaged(cam), batched_avg)
    np.testing.assert_array_equal(cam.last_targets_, targets)


def test_explicit_targets_change_gradient_maps(cnn, cnn_images):
    cam = get_cam("gradcam", cnn)
    a, b = cam(cnn_images, targets=0), cam(cnn_images, targets=2)
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(cam.last_targets_, [2] * len(cnn_images))
