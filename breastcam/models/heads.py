"""The classification head every registered model ends with, and the logits contract.

**Contract (relied on by ``breastcam.explain`` and ``breastcam.export``):** every model built by
:func:`breastcam.models.build` ends in

    ... -> Dense(num_classes, activation=None, name="logits")
        -> Activation("softmax", name="probabilities")

so the model outputs probabilities while the pre-softmax class scores are simply
``model.get_layer("logits").output``. CAM methods differentiate those logits, never the
probabilities (softmax couples the classes and saturates). :func:`logits_model` wraps that.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from breastcam.errors import ConfigError

LOGITS = "logits"
PROBABILITIES = "probabilities"


def classification_head(
    x,
    num_classes: int,
    *,
    pooling: str | None = "avg",
    dropout: float = 0.0,
    hidden_units: Sequence[int] = (),
    hidden_names: Sequence[str] | None = None,
    hidden_activation: str = "relu",
    hidden_dropout: float = 0.0,
):
    """Pool, optional hidden Dense layers, dropout, ``logits``, ``probabilities``.

    ``pooling``: ``"avg"`` (``GlobalAveragePooling2D`` named ``avg_pool``, Keras' name),
    ``"max"``, ``"flatten"`` (the original VGG head) or ``None`` (``x`` is already a vector).
    ``hidden_units``: sizes of Dense layers between pooling and the logits (VGG's ``fc1``,
    ``fc2``: pass ``hidden_names`` to keep Keras' names so ImageNet weights load by name).
    ``hidden_dropout`` follows every hidden layer; ``dropout`` sits right before the logits.
    Returns the ``probabilities`` tensor.
    """
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
    if not 0.0 <= dropout < 1.0 or not 0.0 <= hidden_dropout < 1.0:
        raise ConfigError(f"dropout rates must be in [0, 1), got {dropout!r}, {hidden_dropout!r}")
    if hidden_names is not None and len(hidden_names) != len(hidden_units):
        raise ConfigError("hidden_names must name every hidden layer")

    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    elif pooling == "flatten":
        x = layers.Flatten(name="flatten")(x)
    elif pooling is not None:
        raise ConfigError(f"pooling must be 'avg', 'max', 'flatten' or None, got {pooling!r}")

    for i, units in enumerate(hidden_units):
        name = hidden_names[i] if hidden_names is not None else f"head_dense{i + 1}"
        x = layers.Dense(units, activation=hidden_activation, name=name)(x)
        if hidden_dropout:
            x = layers.Dropout(hidden_dropout, name=f"{name}_dropout")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(num_classes, activation=None, name=LOGITS)(x)
    # float32 even under a mixed-precision policy: probabilities summed, thresholded and
    # exported must not carry float16/bfloat16 rounding (Keras' mixed-precision guide).
    return layers.Activation("softmax", name=PROBABILITIES, dtype="float32")(x)


def classifier_logits(model: keras.Model):
    """The symbolic logits tensor of a registered model (the input of its softmax)."""
    try:
        return model.get_layer(LOGITS).output
    except ValueError:
        raise ConfigError(
            f"model {model.name!r} has no layer named {LOGITS!r}: models built by "
            "breastcam.models.build end in Dense(name='logits') -> "
            "Activation('softmax', name='probabilities')"
        ) from None


def logits_model(model: keras.Model, *extra_outputs: str) -> keras.Model:
    """A functional model with ``model``'s inputs whose output is its pre-softmax logits.

    The new model shares ``model``'s layers and weights. Names in ``extra_outputs`` (e.g. the
    CAM layer) are returned first: ``logits_model(m, "conv5_block3_out")`` outputs
    ``[feature_map, logits]``, which is what a one-tape Grad-CAM needs.
    """
    logits = classifier_logits(model)
    if not extra_outputs:
        return keras.Model(model.inputs, logits, name=f"{model.name}_logits")
    outputs = [model.get_layer(name).output for name in extra_outputs] + [logits]
    return keras.Model(model.inputs, outputs, name=f"{model.name}_logits")
