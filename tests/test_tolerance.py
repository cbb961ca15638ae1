"""The tolerance helpers of ``tests/_tolerance.py`` accept float rounding and reject real errors."""

from __future__ import annotations

import numpy as np
import pytest

from _tolerance import assert_images_close, assert_masks_match, assert_thresholded_maps_close, mask_iou


def test_images_close_accepts_a_few_one_level_moves_only():
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    moved = image.copy()
    moved[0, :3, 0] = np.where(image[0, :3, 0] < 255, image[0, :3, 0] + 1, 254)
    assert assert_images_close(moved, image) == 3
    assert assert_images_close(moved.astype(np.float32), image.astype(np.float32)) == 3
    with pytest.raises(AssertionError, match="up to 2 grey levels"):
        two = image.astype(int)
        two[5, 5, 1] = two[5, 5, 1] + 2 if two[5, 5, 1] < 254 else two[5, 5, 1] - 2
        assert_images_close(two, image)
    with pytest.raises(AssertionError, match="values differ"):
        assert_images_close(np.clip(image.astype(int) + 1, 0, 255), image)  # a shift of all
    with pytest.raises(AssertionError, match="at most 2 allowed"):
        assert_images_close(moved, image, max_count=2)
    with pytest.raises(AssertionError, match="shapes"):
        assert_images_close(image[1:], image)


def test_mask_iou_and_thresholded_maps():
    a = np.zeros((2, 10, 10), bool)
    a[:, 2:8, 2:8] = True  # 36 pixels each
    b = a.copy()
    b[0, 2, 2] = False  # one pixel on the threshold flipped
    assert mask_iou(a[0], b[0]) == pytest.approx(35 / 36)
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert_masks_match(b, a, min_iou=0.97)
    with pytest.raises(AssertionError, match="mask 0: IoU"):
        assert_masks_match(b, a)  # 0.972 < 0.98
    maps = np.where(a, 0.5, 0.0)
    assert_thresholded_maps_close(maps + a * 1e-6, maps, atol=1e-5)
    with pytest.raises(AssertionError, match="kept values differ"):
        assert_thresholded_maps_close(maps + a * 1e-3, maps, atol=1e-5)
    with pytest.raises(AssertionError, match="IoU"):
        assert_thresholded_maps_close(np.roll(maps, 3, axis=2), maps, atol=1e-5)
