"""Eigen-CAM (Muhammad & Yeasin 2020): the first principal component of the activations.

Class-agnostic: ``targets`` only choose what ``last_targets_`` reports; the map does not depend
on them, and no gradient is computed.

For each image the ``(h*w, C)`` activation matrix is centred (the mean over positions is
subtracted from every channel), its first right singular vector ``v`` is found by SVD, and the
map is the projection ``centred @ v``. A singular vector's sign is arbitrary (pytorch-grad-cam's
issues #315 and #364: maps that flip between runs or look inverted), so the sign is fixed such
that the map correlates positively with the mean activation over channels — where the features
fire is where the map is high. Where the mean over channels carries no spatial signal (its standard
deviation over positions below 1e-3 of the activations' — layer-normalised transformer tokens
have a channel mean of 0 at every position), the sign instead makes the projection's
largest-magnitude value positive. ReLU then keeps the positive side.
"""

from __future__ import annotations

import tensorflow as tf

from breastcam.explain.base import BaseCAM

# The channel mean is "flat" when its spread over positions is below this fraction of the
# activations' spread.
_REFERENCE_RTOL = 1e-3


def first_component_projection(activations: tf.Tensor) -> tf.Tensor:
    """Sign-fixed projection ``[B, h, w]`` of ``[B, h, w, C]`` activations on their first PC."""
    shape = tf.shape(activations)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    flat = tf.reshape(activations, tf.stack([b, h * w, c]))
    centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    _, _, v = tf.linalg.svd(centred, full_matrices=False)  # v: [B, C, k]
    proj = tf.einsum("bpc,bc->bp", centred, v[:, :, 0])
    reference = tf.reduce_mean(flat, axis=2)  # mean activation over channels, [B, h*w]
    cov = tf.reduce_sum(
        (proj - tf.reduce_mean(proj, axis=1, keepdims=True))
        * (reference - tf.reduce_mean(reference, axis=1, keepdims=True)),
        axis=1,
        keepdims=True,
    )
    ref_std = tf.math.reduce_std(reference, axis=1, keepdims=True)
    informative = (ref_std > _REFERENCE_RTOL * tf.math.reduce_std(flat, axis=[1, 2])[:, None]) & (cov != 0.0)
    peak = tf.gather(proj, tf.argmax(tf.abs(proj), axis=1, output_type=tf.int32), axis=1, batch_dims=1)[:, None]
    negative = tf.where(informative, cov < 0.0, peak < 0.0)
    sign = tf.where(negative, -tf.ones_like(cov), tf.ones_like(cov))
    return tf.reshape(proj * sign, tf.stack([b, h, w]))


class EigenCAM(BaseCAM):
    name = "eigencam"
    uses_gradients = False

    def cam_image(self, activations: tf.Tensor, gradients: tf.Tensor | None) -> tf.Tensor:
        return first_component_projection(activations)
