"""A fitted Macenko is the ``stain=`` callable of the tf.data pipeline."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from breastcam.data import load_manifest, make_dataset
from breastcam.data.pipeline import resize_image
from breastcam.stain import Macenko

from _tolerance import assert_images_close


def test_fitted_macenko_inside_make_dataset(breakhis_root):
    df = load_manifest("breakhis", breakhis_root).head(6).reset_index(drop=True)
    size = (96, 96)
    raw = [
        resize_image(tf.io.decode_png(tf.io.read_file(str(breakhis_root / p)), 3), size)
        for p in df["path"]
    ]
    normaliser = Macenko().fit(raw[0])
    ds = make_dataset(
        df, breakhis_root, image_size=size, preprocessing="none", batch_size=3, stain=normaliser
    )
    images = np.concatenate([x.numpy() for x, _ in ds])
    expected = normaliser.transform(tf.stack(raw)).numpy().astype(np.float32)
    # One image at a time inside tf.data vs a batch of 6: float32 order differs (rounding at .5).
    assert_images_close(images, expected)
    assert int(normaliser.images_seen.numpy()) >= 6


def test_plain_tf_data_map():
    rng = np.random.default_rng(1)
    hema, eosin = np.array([0.65, 0.70, 0.29]), np.array([0.07, 0.99, 0.11])
    conc = rng.uniform(0.0, 1.2, size=(4, 64, 64, 2))
    images = 240.0 * np.exp(-(conc[..., :1] * hema + conc[..., 1:] * eosin))
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    images[3] = 250  # a background tile in the stream
    normaliser = Macenko().fit(images[0])
    ds = tf.data.Dataset.from_tensor_slices(images).map(normaliser)
    out = np.stack([x.numpy() for x in ds])
    assert out.dtype == np.uint8 and out.shape == images.shape
    np.testing.assert_array_equal(out[3], images[3])
    assert int(normaliser.fallback_count.numpy()) == 1
