"""DT Grad-CAM (Liu et al.): Grad-CAM with a dynamic (Otsu) threshold.

Version 1 (paper 000): the Grad-CAM map, Otsu's threshold ``T`` on it, values ``> T`` kept and
the rest set to zero.

Version 2 (paper 001, the default): ``N`` noisy copies ``x + sigma * N(0, 1)`` of each image,
Grad-CAM of each, a weighted average of the N maps with weights falling linearly from 1 to 0.5
(``np.linspace(1, 0.5, N)``, normalised to sum 1), Otsu on the average, values ``> T`` kept, then a
morphological opening followed by a closing of the kept region (elliptical kernel).

The average is paper 001's eq. 8, ``L_avg = sum_i w_i L^(i) / sum_i w_i``, over the **raw** noisy
maps ``L^(i) = ReLU(sum_k alpha_k A^k)`` (eq. 6, bilinearly resized to the input): a noisy copy
with a stronger response weighs more. ``average="normalised"`` min-max normalises each noisy map
before averaging (every copy weighs the same; breastcam's earlier behaviour). Either way the
average is then min-max normalised for Otsu (paper 001 eq. 9 thresholds a map in [0, 1]).

Choices the papers leave open (all parameters):

- ``sigma`` is a fraction of each image's own input range (``max - min`` over its pixels and
  channels, in the preprocessed domain), default 0.1;
- the noise fields are drawn once from ``numpy.random.default_rng(seed)`` with the input's
  shape and the **same N fields are used for every image**: an image's map then depends only on
  the image and the seed, never on which other images share its batch;
- the noisy copies are explained for the class of the clean image (``targets`` or its prediction);
- Otsu runs in OpenCV (``cv2.threshold(..., THRESH_BINARY + THRESH_OTSU)``, 256 bins) on the map
  min-max normalised to ``[0, 1]`` and scaled to uint8 (``rint(255 * map)``); ``T`` is in those
  0-255 units and is kept per image in ``last_thresholds_``;
- the morphology acts on the binary kept region; the output is the averaged map inside the
  cleaned region and 0 outside, so a hole filled by the closing shows its (low) averaged values.
  ``kernel_size=None`` scales the kernel as 5x5 at 224 px (the nearest odd size to
  ``5 * min(H, W) / 224``, at least 1); ``kernel_size=0`` turns the morphology off.

After a call: ``last_thresholds_`` (``[B]``, 0-255 units), ``last_averaged_`` (``[B, H, W]``, the
normalised map that was thresholded: the Grad-CAM map for version 1, the noise average for
version 2) and ``last_masks_`` (``[B, H, W]`` bool, the region kept).
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from breastcam.errors import ConfigError
from breastcam.explain.base import normalize_maps, resize_maps
from breastcam.explain.gradcam import GradCAM


def otsu_threshold(map01: np.ndarray) -> tuple[float, np.ndarray]:
    """OpenCV's Otsu threshold of a ``[H, W]`` map in ``[0, 1]`` scaled to uint8: ``(T, uint8 map)``."""
    u8 = np.clip(np.rint(map01 * 255.0), 0, 255).astype(np.uint8)
    t, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(t), u8


def default_kernel_size(height: int, width: int) -> int:
    """Odd elliptical kernel size scaling as 5 at 224 px."""
    target = 5.0 * min(height, width) / 224.0
    return max(1, 2 * int(round((target - 1.0) / 2.0)) + 1)


def noise_weights(n_samples: int) -> np.ndarray:
    """Weights of the N noisy maps: linear from 1 to 0.5, normalised to sum 1."""
    w = np.linspace(1.0, 0.5, n_samples)
    return (w / w.sum()).astype(np.float32)


#: How the noisy maps are averaged: "raw" (paper 001 eq. 8) or "normalised" (each map first).
AVERAGES = ("raw", "normalised")


def average_noisy_maps(maps: tf.Tensor, average: str = "raw") -> tf.Tensor:
    """``[B, N, H, W]`` raw (ReLU, resized) noisy maps -> ``[B, H, W]`` weighted average in [0, 1].

    Shared by the Python engine and the graph version (:mod:`breastcam.explain.dtgradcam_graph`).
    """
    if average not in AVERAGES:
        raise ConfigError(f"average must be one of {AVERAGES}, got {average!r}")
    maps = tf.convert_to_tensor(maps, tf.float32)
    if average == "normalised":
        shape = tf.shape(maps)
        maps = tf.reshape(normalize_maps(tf.reshape(maps, (-1, shape[2], shape[3]))), shape)
    n = maps.shape[1]
    return normalize_maps(tf.tensordot(maps, tf.constant(noise_weights(n)), axes=[[1], [0]]))


class DTGradCAM(GradCAM):
    name = "dtgradcam"

    def __init__(
        self,
        model,
        layer: str | None = None,
        *,
        version: int = 2,
        n_samples: int = 8,
        sigma: float = 0.1,
        kernel_size: int | None = None,
        seed: int = 0,
        average: str = "raw",
        batch_size: int = 32,
    ):
        super().__init__(model, layer, batch_size=batch_size)
        if average not in AVERAGES:
            raise ConfigError(f"average must be one of {AVERAGES} (paper 001 eq. 8: 'raw'), got {average!r}")
        self.average = average
        if version not in (1, 2):
            raise ConfigError(f"version must be 1 (Grad-CAM + Otsu) or 2 (noise-averaged), got {version!r}")
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ConfigError(f"n_samples must be a positive int, got {n_samples!r}")
        if not sigma >= 0:
            raise ConfigError(f"sigma must be >= 0 (a fraction of the input range), got {sigma!r}")
        if kernel_size is not None and (not isinstance(kernel_size, (int, np.integer)) or kernel_size < 0):
            raise ConfigError(f"kernel_size must be None (auto), 0 (off) or a positive int, got {kernel_size!r}")
        self.version = version
        self.n_samples = int(n_samples)
        self.sigma = float(sigma)
        self.kernel_size = kernel_size
        self.seed = seed
        self._noise: dict[tuple, tf.Tensor] = {}
        self._predict_fn = tf.function(
            self._predict, input_signature=[self._input_spec, tf.TensorSpec((None,), tf.int32)]
        )
        self.last_thresholds_: np.ndarray | None = None
        self.last_averaged_: np.ndarray | None = None
        self.last_masks_: np.ndarray | None = None

    def finish(self, low: tf.Tensor, size) -> tf.Tensor:
        """ReLU and resize only: the noisy maps are averaged raw (eq. 8); normalised later."""
        return resize_maps(tf.nn.relu(low), size)

    def _predict(self, x, targets):
        _, logits = self.forward(x)
        return self.resolve_targets(logits, targets), tf.nn.softmax(logits, axis=-1)

    def noise(self, shape: tuple[int, ...]) -> tf.Tensor:
        """The ``[N, H, W, C]`` standard-normal noise fields for inputs of ``shape`` (seeded)."""
        key = tuple(shape)
        if key not in self._noise:
            rng = np.random.default_rng(self.seed)
            self._noise[key] = tf.constant(rng.standard_normal((self.n_samples, *key), dtype=np.float32))
        return self._noise[key]

    def averaged_maps(self, x: np.ndarray, targets: np.ndarray):
        """Version 2's noise-averaged Grad-CAM maps (in [0, 1]), targets and clean probabilities."""
        x_t = tf.constant(x)
        t, probs = self._predict_fn(x_t, tf.constant(targets))
        b, n = x.shape[0], self.n_samples
        span = tf.reduce_max(x_t, axis=[1, 2, 3]) - tf.reduce_min(x_t, axis=[1, 2, 3])
        sigma = tf.reshape(self.sigma * span, (b, 1, 1, 1, 1))
        copies = tf.reshape(x_t[:, None] + sigma * self.noise(x.shape[1:])[None], (b * n, *x.shape[1:]))
        copy_targets = tf.repeat(t, n)
        maps = []
        for start in range(0, b * n, self.batch_size):
            m, _, _ = self._compiled(copies[start:start + self.batch_size], copy_targets[start:start + self.batch_size])
            maps.append(m)
        maps = tf.reshape(tf.concat(maps, 0), (b, n, *x.shape[1:3]))
        return average_noisy_maps(maps, self.average).numpy(), t.numpy(), probs.numpy()

    def _maps(self, x, targets):
        if self.version == 1:
            raw, t, probs = super()._maps(x, targets)
            avg = normalize_maps(tf.constant(raw)).numpy()
        else:
            avg, t, probs = self.averaged_maps(x, targets)
        h, w = avg.shape[1:3]
        k = default_kernel_size(h, w) if self.kernel_size is None else int(self.kernel_size)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)) if self.version == 2 and k > 0 else None
        out = np.zeros_like(avg)
        thresholds = np.zeros(len(avg), np.float32)
        masks = np.zeros(avg.shape, bool)
        for i, m in enumerate(avg):
            thresholds[i], u8 = otsu_threshold(m)
            keep = (u8 > thresholds[i]).astype(np.uint8)
            if kernel is not None:
                keep = cv2.morphologyEx(keep, cv2.MORPH_OPEN, kernel)
                keep = cv2.morphologyEx(keep, cv2.MORPH_CLOSE, kernel)
            masks[i] = keep.astype(bool)
            out[i] = np.where(masks[i], m, 0.0)
        self._chunk_extras.append((thresholds, avg, masks))
        return out, t, probs

    def __call__(self, images, targets=None) -> np.ndarray:
        self._chunk_extras: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        maps = super().__call__(images, targets)
        if self._chunk_extras:
            self.last_thresholds_ = np.concatenate([e[0] for e in self._chunk_extras])
            self.last_averaged_ = np.concatenate([e[1] for e in self._chunk_extras])
            self.last_masks_ = np.concatenate([e[2] for e in self._chunk_extras])
        return maps
