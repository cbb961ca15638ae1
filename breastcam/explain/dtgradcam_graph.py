"""DT Grad-CAM as one TensorFlow graph function, for SavedModel signatures.

:class:`~breastcam.explain.dtgradcam.DTGradCAM` computes its noisy Grad-CAM maps in TensorFlow
and then thresholds and cleans them with OpenCV. Here the OpenCV steps are replaced by the
graph ops of :mod:`breastcam.explain.graph_ops` (held equal to OpenCV by tests), so the whole
method — noise, N Grad-CAM passes, weighted average, Otsu, opening and closing — is traceable.
The noise fields, weights and kernel are the same constants the Python class uses.
"""

from __future__ import annotations

import tensorflow as tf

from breastcam.errors import ConfigError
from breastcam.explain.base import normalize_maps
from breastcam.explain.dtgradcam import DTGradCAM, average_noisy_maps, default_kernel_size
from breastcam.explain.graph_ops import ellipse_kernel, open_close, otsu_thresholds


def dtgradcam_graph(cam: DTGradCAM):
    """A traceable ``fn(x) -> dict`` computing what ``cam(x)`` computes, for fixed-size inputs.

    ``x`` is a float32 ``[B, H, W, C]`` batch of preprocessed images of the model's input size.
    The dict holds ``cam`` ([B, H, W] in [0, 1]), ``threshold`` ([B], Otsu's T in 0-255 units),
    ``target`` ([B], the class explained: the predicted one) and ``probabilities``.
    """
    in_shape = tuple(int(d) for d in cam.model.inputs[0].shape[1:])
    if any(d is None for d in in_shape):
        raise ConfigError("DT Grad-CAM in a graph needs a model with a fixed input size")
    h, w = in_shape[:2]
    n = cam.n_samples
    noise = cam.noise(in_shape) if cam.version == 2 else None
    k = default_kernel_size(h, w) if cam.kernel_size is None else int(cam.kernel_size)
    kernel = ellipse_kernel(k) if cam.version == 2 and k > 0 else None

    def fn(x: tf.Tensor) -> dict[str, tf.Tensor]:
        b = tf.shape(x)[0]
        targets = tf.fill([b], -1)
        _, logits = cam.forward(x)
        t = cam.resolve_targets(logits, targets)
        probs = tf.nn.softmax(logits, axis=-1)
        if cam.version == 1:
            avg = normalize_maps(cam._compute(x, t)[0])  # DTGradCAM.finish leaves maps raw
        else:
            span = tf.reduce_max(x, axis=[1, 2, 3]) - tf.reduce_min(x, axis=[1, 2, 3])
            sigma = tf.reshape(cam.sigma * span, (-1, 1, 1, 1, 1))
            copies = tf.reshape(x[:, None] + sigma * noise[None], (-1, *in_shape))
            maps, _, _ = cam._compute(copies, tf.repeat(t, n))
            avg = average_noisy_maps(tf.reshape(maps, (-1, n, h, w)), cam.average)
        u8 = tf.cast(tf.clip_by_value(tf.round(avg * 255.0), 0.0, 255.0), tf.int32)
        thresholds = otsu_thresholds(u8)
        keep = tf.cast(u8 > thresholds[:, None, None], tf.float32)
        if kernel is not None:
            keep = open_close(keep, kernel)
        out = tf.where(keep > 0.5, avg, tf.zeros_like(avg))
        return {
            "cam": out,
            "threshold": tf.cast(thresholds, tf.float32),
            "target": t,
            "probabilities": probs,
        }

    return fn
