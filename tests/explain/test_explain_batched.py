"""Every method gives the same map for an image alone or inside a batch."""

from __future__ import annotations

import numpy as np
import pytest

from breastcam.explain import get_cam

PARAMS = {
    "gradcam": {},
    "gradcampp": {},
    "eigencam": {},
    "scorecam": {"top_k": 6, "batch_size": 8},
    "dtgradcam": {"n_samples": 4},
    "dtgradcam-v1": {"version": 1},
}


@pytest.mark.parametrize("key", list(PARAMS))
def test_batched_equals_per_image(cnn, cnn_images, key):
    cam = get_cam(key.split("-")[0], cnn, **PARAMS[key])
    batched = cam(cnn_images)
    targets = cam.last_targets_.copy()
    single = np.concatenate([cam(img[None]) for img in cnn_images])
    assert batched.shape == (len(cnn_images), 32, 32) and batched.dtype == np.float32
    assert np.isfinite(batched).all() and batched.min() >= 0.0 and batched.max() <= 1.0
    assert batched.max() == pytest.approx(1.0)  # min-max normalised (DT keeps the peak)
    assert np.abs(batched - single).max() < 1e-5
    # Chunking (batch_size smaller than the batch) changes nothing either.
    cam.batch_size = 2
    assert np.abs(cam(cnn_images) - batched).max() < 1e-5
    np.testing.assert_array_equal(cam.last_targets_, targets)


def test_explicit_targets_change_gradient_maps(cnn, cnn_images):
    cam = get_cam("gradcam", cnn)
    a, b = cam(cnn_images, targets=0), cam(cnn_images, targets=2)
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(cam.last_targets_, [2] * len(cnn_images))
