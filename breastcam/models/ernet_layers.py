"""The one custom layer of ERNet: the learnable weighted sum of an ER connection.

An ER connection (paper 003, eq. 10; SPEC §4) replaces the identity shortcut of a Block B:
``ER_j(x_1 .. x_{j-1}) = sum_i w_j^i * N(x_i)``, where ``N`` is a non-affine BatchNormalization
(core ``keras.layers.BatchNormalization(center=False, scale=False)``, built in ``ernet.py``) and
``w_j^i`` a learnable per-channel weight vector. This layer holds the ``w_j^i`` and does the sum.
"""

from __future__ import annotations

import keras
from keras import ops

from breastcam.errors import ConfigError


@keras.saving.register_keras_serializable(package="breastcam")
class ERWeightedSum(keras.layers.Layer):
    """``sum_i w_i * inputs[i]`` with one learnable per-channel weight vector per input.

    Call it on a list of tensors of the same shape ``(..., channels)`` (channels last), oldest
    first. The weights start at 1 for the last input (the previous block's output) and 0 for
    all others, so at initialisation the layer returns its last input unchanged: an untrained
    ERNet is a ResNet whose shortcut is the normalised previous output.
    """

    def build(self, input_shape):
        shapes = self._as_shape_list(input_shape)
        channels = shapes[0][-1]
        for i, shape in enumerate(shapes):
            if tuple(shape[1:]) != tuple(shapes[0][1:]):
                raise ConfigError(
                    f"{self.name}: every input must have the same shape; input 0 has "
                    f"{tuple(shapes[0])} but input {i} has {tuple(shape)}"
                )
        if channels is None:
            raise ConfigError(f"{self.name}: the channel dimension must be known, got {shapes[0]}")
        last = len(shapes) - 1
        self.connection_weights = [
            self.add_weight(
                shape=(channels,),
                initializer="ones" if i == last else "zeros",
                name=f"w_{i}",
            )
            for i in range(len(shapes))
        ]

    def call(self, inputs):
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if len(inputs) != len(self.connection_weights):
            raise ConfigError(
                f"{self.name} was built for {len(self.connection_weights)} inputs but called "
                f"on {len(inputs)}"
            )
        total = None
        for x, w in zip(inputs, self.connection_weights):
            term = x * ops.cast(w, x.dtype)
            total = term if total is None else total + term
        return total

    def compute_output_shape(self, input_shape):
        return tuple(self._as_shape_list(input_shape)[0])

    @staticmethod
    def _as_shape_list(input_shape):
        # A list of shapes (several inputs) or one shape (a single input, not in a list).
        if input_shape and isinstance(input_shape[0], (list, tuple)):
            return [tuple(s) for s in input_shape]
        return [tuple(input_shape)]
