"""MC dropout (Gal & Ghahramani 2016): the trained network with its dropout switched on at test time.

Calling a Keras model with ``training=True`` would also put batch normalisation in training
mode (batch statistics, moving averages updated), which is not MC dropout. Instead the graph is
cloned with every ``Dropout`` replaced by :class:`MCDropout` — the same rate, always on — and
every other layer reused as it is (same weights, inference mode), nested models included.
"""

from __future__ import annotations

import keras

from breastcam.errors import UsageError


@keras.saving.register_keras_serializable(package="breastcam")
class MCDropout(keras.layers.Dropout):
    """Dropout that drops in inference too: one draw of the network's posterior per call."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def dropout_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every ``Dropout`` with a rate above zero, nested models searched."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += dropout_layers(layer)
        elif isinstance(layer, keras.layers.Dropout) and float(layer.rate) > 0:
            found.append(layer)
    return found


def with_mc_dropout(model: keras.Model, seed: int = 0) -> keras.Model:
    """``model`` with dropout on at test time (shares its weights; ``model`` is unchanged).

    Raises :class:`~breastcam.errors.UsageError` naming the model when it has no dropout.
    """
    if not dropout_layers(model):
        raise UsageError(f"model {model.name!r} has no Dropout layer, so MC dropout has nothing to "
                         "sample: use --uncertainty tta:K (test-time augmentation), or train a model "
                         "with dropout (e.g. the dala protocol's head dropout 0.25)")
    count = iter(range(1_000_000))

    def swap(layer):
        if isinstance(layer, keras.layers.Dropout) and not isinstance(layer, MCDropout):
            return MCDropout(layer.rate, noise_shape=layer.noise_shape, seed=seed + next(count),
                             name=f"{layer.name}_mc")
        return layer  # reused: the trained weights, in inference mode

    return keras.models.clone_model(model, clone_function=swap, recursive=True)
