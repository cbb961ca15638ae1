"""Otsu's threshold and binary morphology as TensorFlow graph ops.

The Python DT Grad-CAM (``dtgradcam.py``) thresholds and cleans its maps with OpenCV, which a
SavedModel cannot carry. These ops reproduce OpenCV's results inside a graph so an exported
model can return its DT Grad-CAM map from one serving call; tests hold them equal to OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

_FLT_EPSILON = float(np.finfo(np.float32).eps)


def otsu_thresholds(u8_maps: tf.Tensor) -> tf.Tensor:
    """Otsu threshold per map of a ``[B, H, W]`` tensor of integers in 0..255, as OpenCV gives it.

    OpenCV scans t = 0..255, skips t where either class holds (almost) no probability mass, and
    keeps the first t of maximal between-class variance ``q1 q2 (mu1 - mu2)^2``; so does this.
    """
    b = tf.shape(u8_maps)[0]
    flat = tf.reshape(tf.cast(u8_maps, tf.int32), (b, -1))
    hist = tf.math.bincount(flat, minlength=256, maxlength=256, axis=-1, dtype=tf.float64)
    p = hist / tf.reduce_sum(hist, axis=1, keepdims=True)
    levels = tf.range(256, dtype=tf.float64)
    q1 = tf.cumsum(p, axis=1)
    m1 = tf.cumsum(p * levels, axis=1)
    mu = m1[:, -1:]
    q2 = 1.0 - q1
    valid = (tf.minimum(q1, q2) >= _FLT_EPSILON) & (tf.maximum(q1, q2) <= 1.0 - _FLT_EPSILON)
    safe_q1 = tf.where(valid, q1, tf.ones_like(q1))
    safe_q2 = tf.where(valid, q2, tf.ones_like(q2))
    mu1 = m1 / safe_q1
    mu2 = (mu - m1) / safe_q2
    sigma = tf.where(valid, q1 * q2 * tf.square(mu1 - mu2), tf.fill(tf.shape(q1), tf.constant(-1.0, tf.float64)))
    best = tf.argmax(sigma, axis=1, output_type=tf.int32)
    # No valid t at all (a constant map): OpenCV returns 0.
    return tf.where(tf.reduce_any(valid, axis=1), best, tf.zeros_like(best))


def ellipse_kernel(size: int) -> np.ndarray:
    """OpenCV's elliptical structuring element of ``size`` x ``size`` (bool)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(size), int(size))).astype(bool)


def _filters(kernel: np.ndarray) -> tf.Tensor:
    # Flat structuring element: 0 inside the kernel, a large negative number outside.
    return tf.constant(np.where(kernel, 0.0, -1e9)[..., None], tf.float32)


def dilate(masks: tf.Tensor, kernel: np.ndarray) -> tf.Tensor:
    """Binary dilation of ``[B, H, W]`` float {0, 1} masks; pixels beyond the border are ignored."""
    out = tf.nn.dilation2d(masks[..., None], _filters(kernel), strides=[1, 1, 1, 1], padding="SAME",
                           data_format="NHWC", dilations=[1, 1, 1, 1])
    return out[..., 0]


def erode(masks: tf.Tensor, kernel: np.ndarray) -> tf.Tensor:
    """Binary erosion (the dual of :func:`dilate`; the kernel is symmetric, so no reflection)."""
    return -dilate(-masks, kernel)


def open_close(masks: tf.Tensor, kernel: np.ndarray) -> tf.Tensor:
    """Morphological opening then closing, as ``cv2.morphologyEx`` OPEN then CLOSE."""
    opened = dilate(erode(masks, kernel), kernel)
    return erode(dilate(opened, kernel), kernel)
