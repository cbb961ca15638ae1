"""Grad-CAM++ (Chattopadhay et al. 2018), closed form.

With the class score taken as ``exp(logit)``, the second and third derivatives of the score are
powers of the first-order gradient ``g``, so the pixel coefficients are

    alpha = g^2 / (2 g^2 + sum_ij(A) * g^3)        (0 where g == 0)

and the channel weight is ``sum_ij alpha * relu(g)``.
"""

from __future__ import annotations

import tensorflow as tf

from breastcam.explain.base import BaseCAM

_EPS = 1e-7


class GradCAMPlusPlus(BaseCAM):
    name = "gradcampp"

    def cam_weights(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        g2 = tf.square(gradients)
        g3 = g2 * gradients
        sum_a = tf.reduce_sum(activations, axis=[1, 2], keepdims=True)
        alpha = g2 / (2.0 * g2 + sum_a * g3 + _EPS)
        alpha = tf.where(gradients != 0.0, alpha, tf.zeros_like(alpha))
        return tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=[1, 2])
