"""Grad-CAM (Selvaraju et al.): channel weights are the spatial mean of the gradients."""

from __future__ import annotations

import tensorflow as tf

from breastcam.explain.base import BaseCAM


class GradCAM(BaseCAM):
    """``weights[b, c] = mean_{i,j} d logit_target / d A[b, i, j, c]``."""

    name = "gradcam"

    def cam_weights(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(gradients, axis=[1, 2])
