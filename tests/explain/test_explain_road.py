"""ROAD (Rong et al. 2022): noisy linear imputation against hand-computed values and its defining
property, MoRF / LeRF on a model whose answer is known, and the columns ``explain --faithfulness``
writes."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from breastcam.errors import ConfigError
from breastcam.explain.road import linear_imputation, noisy_linear_imputation, road


def test_one_removed_pixel_is_the_weighted_mean_of_its_eight_neighbours():
    img = np.array([[5, 1, 6], [2, 0, 3], [7, 4, 8]], np.float64)[..., None]
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = True
    # direct neighbours 1, 2, 3, 4 weigh 1/6; diagonals 5, 6, 7, 8 weigh 1/12; the weights sum to 1
    expected = (1 + 2 + 3 + 4) / 6 + (5 + 6 + 7 + 8) / 12
    assert linear_imputation(img, removed)[1, 1, 0] == pytest.approx(expected, abs=1e-12)


def test_a_corner_pixel_uses_only_the_neighbours_inside_the_image():
    img = np.array([[0, 6], [12, 24]], np.float64)[..., None]
    removed = np.array([[True, False], [False, False]])
    # right 6 and below 12 at 1/6, the diagonal 24 at 1/12, divided by 5/12
    expected = (6 / 6 + 12 / 6 + 24 / 12) / (5 / 12)
    assert linear_imputation(img, removed)[0, 0, 0] == pytest.approx(expected, abs=1e-12)


def test_a_removed_region_satisfies_the_mean_property_everywhere_channel_by_channel():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(12, 10, 3))
    removed = np.zeros((12, 10), bool)
    removed[3:8, 2:9] = True
    removed[0, 0] = removed[11, 9] = True
    out = linear_imputation(img, removed)
    np.testing.assert_array_equal(out[~removed], img[~removed])  # known pixels untouched
    for r, c in zip(*np.nonzero(removed)):
        num, den = np.zeros(3), 0.0
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if (dr or dc) and 0 <= r + dr < 12 and 0 <= c + dc < 10:
                    weight = 1 / 12 if dr and dc else 1 / 6
                    num += weight * out[r + dr, c + dc]
                    den += weight
        np.testing.assert_allclose(out[r, c], num / den, atol=1e-9)


def test_noise_touches_only_the_removed_pixels_and_scales_with_the_range():
    rng = np.random.default_rng(0)
    img = np.linspace(0, 100, 64).reshape(8, 8, 1)
    removed = np.zeros((8, 8), bool)
    removed[2:6, 2:6] = True
    clean = linear_imputation(img, removed)
    noisy = noisy_linear_imputation(img, removed, 0.05, rng)
    np.testing.assert_array_equal(noisy[~removed], img[~removed])
    spread = (noisy - clean)[removed].std()
    assert 0.5 * 5.0 < spread < 2.0 * 5.0  # 0.05 x range 100
    with pytest.raises(ConfigError, match="every pixel removed"):
        linear_imputation(img, np.ones((8, 8), bool))


def _bright_square_model():
    """The class-1 logit is the mean of the top-left 4 x 4 block of the image: a map pointing at
    that block is faithful, one pointing elsewhere is not."""
    inputs = keras.Input((8, 8, 1))
    block = keras.layers.Cropping2D(((0, 4), (0, 4)))(inputs)
    score = keras.layers.GlobalAveragePooling2D()(block)
    logits = keras.layers.Dense(2, name="logits", kernel_initializer=keras.initializers.Constant([[-4.0, 4.0]]),
                                bias_initializer="zeros")(score)
    return keras.Model(inputs, keras.layers.Activation("softmax")(logits))


def test_morf_falls_and_lerf_holds_for_a_faithful_map_and_not_for_an_unfaithful_one():
    model = _bright_square_model()
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, :4, :4] = 1.0  # the evidence
    good = np.zeros((8, 8), np.float32)
    good[:4, :4] = 1.0
    good += np.linspace(0, 0.1, 64).reshape(8, 8)  # break ties
    bad = good[::-1, ::-1].copy()
    res_good = road(model, x, good[None], targets=1, noise=0.0)
    res_bad = road(model, x, bad[None], targets=1, noise=0.0)
    assert res_good["road_morf"][0] < res_bad["road_morf"][0]
    assert res_good["road_lerf"][0] > res_bad["road_lerf"][0]
    assert res_good["road_gap"][0] > res_bad["road_gap"][0]
    assert res_good["morf"].shape == (1, 9) and res_good["fractions"][0] == pytest.approx(0.1)
