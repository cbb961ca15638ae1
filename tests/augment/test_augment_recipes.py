"""Online recipes (dala, ernet): seeded, shape-preserving, applied only when asked."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from breastcam.augment import RECIPES, get_recipe

IMAGES = (tf.random.stateless_uniform([6, 48, 48, 3], seed=[3, 4]) * 255.0).numpy()


def _batches(augment, images=IMAGES, batch_size=3):
    ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    if augment is not None:
        ds = ds.map(augment)
    return [b.numpy() for b in ds]


def test_names():
    assert set(RECIPES) == {"none", "dala", "ernet", "modres"}
    assert get_recipe("none") is None and get_recipe(None) is None
    assert get_recipe("modres") is None  # offline: expand_modres
    assert not RECIPES["modres"].online
    with pytest.raises(ValueError, match="unknown augmentation recipe"):
        get_recipe("mixup")


@pytest.mark.parametrize("name", ["dala", "ernet"])
def test_same_seed_same_batches_different_seed_different(name):
    first = _batches(get_recipe(name, seed=7))
    again = _batches(get_recipe(name, seed=7))
    other = _batches(get_recipe(name, seed=8))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other))
    for a, raw in zip(first, np.split(IMAGES, 2)):
        assert a.shape == raw.shape and a.dtype == np.float32
        assert a.min() >= 0.0 and a.max() <= 255.0
        assert not np.array_equal(a, raw)  # something happened


@pytest.mark.parametrize("name", ["dala", "ernet"])
def test_successive_batches_get_fresh_draws(name):
    augment = get_recipe(name, seed=0)
    same = np.stack([IMAGES[0]] * 8)
    out = augment(tf.constant(same)).numpy()
    assert len({out[i].tobytes() for i in range(8)}) > 1  # per-image randomness
    again = augment(tf.constant(same)).numpy()
    assert not np.array_equal(out, again)  # the state advances per call


def test_unaugmented_batches_are_untouched():
    # Validation/test datasets get augment=None: their batches are the images, every time.
    copy = IMAGES.copy()
    for batches in (_batches(None), _batches(None)):
        np.testing.assert_array_equal(np.concatenate(batches), IMAGES)
    _batches(get_recipe("ernet", seed=1))  # augmenting a batch leaves the source alone
    np.testing.assert_array_equal(IMAGES, copy)


def test_ernet_keeps_the_global_random_state():
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    get_recipe("ernet", seed=5)(tf.constant(IMAGES[:2]))
    assert random.random() == expected


def test_parameters_override_defaults():
    still = get_recipe("dala", seed=0, rotation_factor=0.0)
    out = still(tf.constant(IMAGES[:1])).numpy()[0]
    # No rotation: the image or its mirror image only.
    assert np.allclose(out, IMAGES[0], atol=1e-3) or np.allclose(out, IMAGES[0][:, ::-1], atol=1e-3)
    with pytest.raises(TypeError):
        get_recipe("dala", no_such_option=1)
