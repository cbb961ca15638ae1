"""``tinycnn``: a four-block CNN for smoke runs, distribution tests and CI - not from a paper.

Why it exists: rehearsing a protocol, checking a multi-worker launch or a mixed-precision
setting, or testing a new data set's plumbing should not cost a ResNet50 forward pass per
image. It follows every registry contract (``logits`` -> ``probabilities`` head, a spatial CAM
layer, BatchNorm and dropout so that training-mode behaviour is exercised) with ~0.1 M
parameters. It has no ImageNet weights.
"""

from __future__ import annotations

import keras
from keras import layers

from breastcam.models.heads import classification_head
from breastcam.models.registry import register
from breastcam.models.weights import apply_weights


@register("tinycnn", cam_layer="block4_out", input_shape=(64, 64, 3), preprocessing="minus_one_one")
def tinycnn(
    num_classes: int,
    input_shape: tuple[int, int, int] = (64, 64, 3),
    weights: str | None = None,
    *,
    widths: tuple[int, ...] = (16, 32, 64, 64),
    dropout: float = 0.25,
) -> keras.Model:
    """Conv-BN-ReLU blocks (stride 2 after the first), global average pool, dropout, head."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, width in enumerate(widths, start=1):
        x = layers.Conv2D(width, 3, strides=1 if i == 1 else 2, padding="same", use_bias=False,
                          name=f"block{i}_conv")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = layers.Activation("relu", name=f"block{i}_out")(x)
    outputs = classification_head(x, num_classes, dropout=dropout)
    model = keras.Model(inputs, outputs, name="tinycnn")
    return apply_weights(model, weights)
