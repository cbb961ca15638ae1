"""Paper B's (ERNet) augmentation: translation, rotation, zoom, then Augmentor centring, flips, crops.

The paper runs an image data generator (translations, rotations) and then the Augmentor library
(flips, crops). Here the first step is Keras preprocessing layers; the second runs Augmentor's own
operation objects (``Augmentor.Operations.Flip``, ``CropPercentage``, ``Resize``) on PIL images,
one image at a time through ``tf.numpy_function``, with Augmentor's own rule for applying an
operation (``round(random.uniform(0, 1), 1) <= probability``). Crops are resized back to the
batch's size so the batch keeps its shape.

Augmentor draws from the global ``random`` module. Each batch gets its own seed (the recipe's
seed and a per-call counter); the global state is saved, seeded, used and restored under a lock,
so the same seed gives the same batches and nothing else in the process is disturbed.

Paper 003 section 3.1 also names zooming ("horizontal flipping, zooming, and rotation") and
"Centering the images: ... each image requires the original columns and rows to be cropped from
the edges": a random zoom (Keras ``RandomZoom``, in the first step) and a centred crop
(Augmentor's ``CropPercentage(centre=True)``, always applied, first of the Augmentor step).
Like every augmentation here they touch the training split only (the paper: "The test dataset
... is loaded into the model without further modification").

Ranges the paper does not give are parameters: translation +-10 % of each side, rotation +-0.1
turn, zoom +-10 %, the centred crop keeping 90 % of each side, each flip with probability 0.5, a
random crop of 80 % of each side with probability 0.5.
"""

from __future__ import annotations

import random
import threading
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from Augmentor import Operations
from PIL import Image

from breastcam.errors import ConfigError

TRANSLATION = 0.1
ROTATION_FACTOR = 0.1
FLIP_PROBABILITY = 0.5
CROP_PROBABILITY = 0.5
CROP_AREA = 0.8  # Augmentor's percentage_area: the crop keeps this fraction of each side
ZOOM = 0.1  # RandomZoom height/width factor range (+-)
CENTRE_CROP_AREA = 0.9  # the centring crop keeps this fraction of each side (1.0: off)

_RANDOM_LOCK = threading.Lock()


class AugmentorStep:
    """Augmentor operations applied to uint8 RGB arrays, reproducibly from a seed."""

    def __init__(
        self,
        *,
        flip_probability: float = FLIP_PROBABILITY,
        crop_probability: float = CROP_PROBABILITY,
        crop_area: float = CROP_AREA,
        centre_crop_area: float = CENTRE_CROP_AREA,
    ):
        if not 0.0 < centre_crop_area <= 1.0:
            raise ConfigError(f"centre_crop_area must be in (0, 1], got {centre_crop_area!r}")
        centring = [] if centre_crop_area == 1.0 else [
            Operations.CropPercentage(
                probability=1.0, percentage_area=centre_crop_area, centre=True, randomise_percentage_area=False
            )
        ]
        self.operations = centring + [
            Operations.Flip(probability=flip_probability, top_bottom_left_right="LEFT_RIGHT"),
            Operations.Flip(probability=flip_probability, top_bottom_left_right="TOP_BOTTOM"),
            Operations.CropPercentage(
                probability=crop_probability,
                percentage_area=crop_area,
                centre=False,
                randomise_percentage_area=False,
            ),
        ]

    def _one(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        pil = [Image.fromarray(image)]
        for operation in self.operations:  # Augmentor's Pipeline._execute_with_array rule
            if round(random.uniform(0, 1), 1) <= operation.probability:
                pil = operation.perform_operation(pil)
        if pil[0].size != (width, height):
            pil = Operations.Resize(1.0, width, height, "BILINEAR").perform_operation(pil)
        return np.asarray(pil[0])

    def __call__(self, images: np.ndarray, seed: int) -> np.ndarray:
        """Augment a float batch [B, H, W, 3] in [0, 255]; returns float32 (whole grey levels)."""
        batch = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        with _RANDOM_LOCK:
            saved = random.getstate()
            try:
                random.seed(int(seed))
                out = np.stack([self._one(img) for img in batch]) if len(batch) else batch
            finally:
                random.setstate(saved)
        return out.astype(np.float32)


def make_ernet(
    *,
    seed: int = 0,
    translation: float = TRANSLATION,
    rotation_factor: float = ROTATION_FACTOR,
    flip_probability: float = FLIP_PROBABILITY,
    crop_probability: float = CROP_PROBABILITY,
    crop_area: float = CROP_AREA,
    zoom: float = ZOOM,
    centre_crop_area: float = CENTRE_CROP_AREA,
) -> Callable[[tf.Tensor], tf.Tensor]:
    """An augmenter for float32 batches [B, H, W, 3] in [0, 255], usable in ``dataset.map``.

    ``zoom=0`` turns the zoom off, ``centre_crop_area=1`` the centring crop.
    """
    translate = keras.layers.RandomTranslation(
        translation, translation, fill_mode="reflect", seed=seed
    )
    rotate = keras.layers.RandomRotation(rotation_factor, fill_mode="reflect", seed=seed + 1)
    zoomer = keras.layers.RandomZoom(zoom, zoom, fill_mode="reflect", seed=seed + 2) if zoom else None
    step = AugmentorStep(
        flip_probability=flip_probability,
        crop_probability=crop_probability,
        crop_area=crop_area,
        centre_crop_area=centre_crop_area,
    )
    calls = tf.Variable(0, dtype=tf.int64, trainable=False, name="ernet_augment_calls")
    base = np.int64(seed) * np.int64(1_000_003)

    def ernet(images: tf.Tensor) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        moved = rotate(translate(images, training=True), training=True)
        if zoomer is not None:
            moved = zoomer(moved, training=True)
        batch_seed = calls.assign_add(1) + base  # one seed per batch, in call order
        out = tf.numpy_function(step, [moved, batch_seed], tf.float32, stateful=True)
        out.set_shape(images.shape)
        return out

    return ernet
