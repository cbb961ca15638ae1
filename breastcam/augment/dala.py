"""Paper A's (DALAResNet50) augmentation: random rotation + horizontal flip, online.

The papers name the operations only ("random rotation and horizontal flipping"); the rotation
range and fill are the project's defaults and parameters: +-0.1 turn (36 degrees), reflected
borders (Keras' default, so no black corners enter histology tiles).
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

ROTATION_FACTOR = 0.1  # fraction of a full turn, as keras.layers.RandomRotation
FILL_MODE = "reflect"


def dala_layers(
    *, seed: int = 0, rotation_factor: float = ROTATION_FACTOR, fill_mode: str = FILL_MODE
) -> list[keras.layers.Layer]:
    """The recipe's Keras layers, in order; the same for the host (``tf.data``) and the
    accelerator (``data.augment_on: device``, inside the training step). Outputs are clipped
    to [0, 255] after the last layer."""
    rotate = keras.layers.RandomRotation(
        rotation_factor, fill_mode=fill_mode, interpolation="bilinear", seed=seed
    )
    flip = keras.layers.RandomFlip("horizontal", seed=seed + 1)
    return [rotate, flip]


def make_dala(
    *, seed: int = 0, rotation_factor: float = ROTATION_FACTOR, fill_mode: str = FILL_MODE
) -> Callable[[tf.Tensor], tf.Tensor]:
    """An augmenter for float32 batches [B, H, W, 3] in [0, 255] (Keras preprocessing layers).

    The layers' seeded state advances with each call, so one augmenter gives a different (but
    reproducible) draw per batch; a new augmenter with the same seed replays the same sequence.
    """
    layers = dala_layers(seed=seed, rotation_factor=rotation_factor, fill_mode=fill_mode)

    def dala(images: tf.Tensor) -> tf.Tensor:
        out = tf.convert_to_tensor(images, tf.float32)
        for layer in layers:
            out = layer(out, training=True)
        return tf.clip_by_value(out, 0.0, 255.0)

    return dala
