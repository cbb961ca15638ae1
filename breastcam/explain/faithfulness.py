"""Mask-free faithfulness of a saliency map: deletion and insertion curves (Petsiuk et al. 2018).

Pixels are ranked by the map (most salient first; ties keep raster order). For fractions
``f = 0, 1/steps, ..., 1``:

- **deletion**: the top ``f`` of the pixels are replaced by the baseline — a faithful map makes
  the class probability fall fast (low area under the curve is good);
- **insertion**: the image starts as the baseline and the top ``f`` of the pixels are restored —
  a faithful map makes the probability rise fast (high area is good).

The class score is the softmax probability of the target class (``targets``, default the class
predicted on the unmodified image), computed from the model's logits. Areas are trapezoids over
the fraction axis ``[0, 1]``. All ``2 * (steps + 1)`` perturbed copies of every image run as
batches of ``batch_size`` through one compiled forward pass.

Baselines (in the preprocessed domain): ``"zero"`` (default; mid-grey for ``minus_one_one``
inputs), ``"mean"`` (the image's per-channel mean), ``"blur"`` (the image blurred with a Gaussian
of sigma = 1/20 of its smaller side: removes detail, keeps colour) or a number.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import cv2
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from breastcam.errors import ConfigError
from breastcam.explain.base import class_score_head, to_batch, to_targets
from breastcam.explain.layers import trace

_SCORERS: "weakref.WeakKeyDictionary[keras.Model, tf.types.experimental.GenericFunction]" = (
    weakref.WeakKeyDictionary()
)


def scorer(model: keras.Model):
    """Compiled ``(x, base, ranks, index, counts, insert, targets) -> probabilities`` for ``model``."""
    if model in _SCORERS:
        return _SCORERS[model]
    traced = trace(model)  # one connected graph, also for Sequential and nested models
    head_input, head = class_score_head(model, traced.ins, traced.outs)
    sub = keras.Model(traced.input, head_input)
    in_shape = tuple(model.inputs[0].shape[1:])
    images = tf.TensorSpec((None, *in_shape), tf.float32)

    def score(x, base, ranks, index, counts, insert, targets):
        keep = tf.gather(ranks, index) < counts[:, None, None]  # [n, H, W]: the top pixels
        keep = tf.equal(keep, insert[:, None, None])[..., None]  # deletion: keep the rest
        perturbed = tf.where(keep, tf.gather(x, index), tf.gather(base, index))
        probs = tf.nn.softmax(tf.cast(head(sub(perturbed, training=False)), tf.float32), axis=-1)
        return tf.gather(probs, tf.gather(targets, index), axis=1, batch_dims=1)

    def predict(x):
        return tf.nn.softmax(tf.cast(head(sub(x, training=False)), tf.float32), axis=-1)

    fns = (
        tf.function(score, input_signature=[
            images, images, tf.TensorSpec((None, None, None), tf.int32), tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.bool), tf.TensorSpec((None,), tf.int32)]),
        tf.function(predict, input_signature=[images]),
    )
    _SCORERS[model] = fns
    return fns


def images_and_maps(images, cams) -> tuple[np.ndarray, np.ndarray]:
    """``(x [B, H, W, C], maps [B, h, w])`` float32, one map per image (a single map gets B = 1)."""
    x = to_batch(images)
    cams = np.asarray(cams, dtype=np.float32)
    if cams.ndim == 2:
        cams = cams[None]
    if len(cams) != len(x):
        raise ConfigError(f"got {len(x)} images but {len(cams)} maps")
    return x, cams


def baseline_images(x: np.ndarray, baseline: str | float = "zero") -> np.ndarray:
    """The baseline of each image of a ``[B, H, W, C]`` batch."""
    if isinstance(baseline, str):
        if baseline == "zero":
            return np.zeros_like(x)
        if baseline == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).astype(np.float32)
        if baseline == "blur":
            sigma = max(min(x.shape[1:3]) / 20.0, 0.5)
            return np.stack([cv2.GaussianBlur(img, (0, 0), sigma).reshape(img.shape) for img in x]).astype(np.float32)
        raise ConfigError(f"baseline must be 'zero', 'mean', 'blur' or a number, got {baseline!r}")
    return np.full_like(x, float(baseline))


def saliency_ranks(cams: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Rank of each pixel (0 = most salient) of each map, after resizing to ``size``."""
    ranks = np.empty((len(cams), *size), np.int32)
    for i, cam in enumerate(cams):
        cam = np.nan_to_num(np.asarray(cam, np.float32))
        if cam.shape != tuple(size):
            cam = cv2.resize(cam, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        order = np.argsort(-cam.ravel(), kind="stable")
        flat = np.empty(order.size, np.int32)
        flat[order] = np.arange(order.size, dtype=np.int32)
        ranks[i] = flat.reshape(size)
    return ranks


def deletion_insertion(
    model: keras.Model,
    images,
    cams,
    targets=None,
    steps: int = 20,
    baseline: str | float = "zero",
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves and their areas for each image.

    Returns a dict of arrays: ``fractions`` ``[steps + 1]``, ``deletion`` and ``insertion``
    ``[B, steps + 1]`` (target-class probabilities), ``deletion_auc`` and ``insertion_auc``
    ``[B]``, ``targets`` ``[B]``. :func:`to_frame` turns it into one row per image.
    """
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps must be a positive int, got {steps!r}")
    x, cams = images_and_maps(images, cams)
    score_fn, predict_fn = scorer(model)
    t = to_targets(targets, len(x))
    if (t < 0).any():
        predicted = np.concatenate(
            [np.argmax(predict_fn(tf.constant(x[s:s + batch_size])).numpy(), axis=-1)
             for s in range(0, len(x), batch_size)]
        ).astype(np.int32)
        t = np.where(t < 0, predicted, t)
    h, w = x.shape[1:3]
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.rint(fractions * h * w).astype(np.int32)
    b = len(x)
    # All (image, step, mode) triples, image-major.
    index = np.repeat(np.arange(b, dtype=np.int32), 2 * (steps + 1))
    pair_counts = np.tile(np.concatenate([counts, counts]), b)
    insert = np.tile(np.repeat([False, True], steps + 1), b)
    x_t = tf.constant(x)
    base_t = tf.constant(baseline_images(x, baseline))
    ranks_t = tf.constant(saliency_ranks(cams, (h, w)))
    t_t = tf.constant(t)
    scores = []
    for s in range(0, len(index), batch_size):
        e = s + batch_size
        scores.append(score_fn(x_t, base_t, ranks_t, tf.constant(index[s:e]), tf.constant(pair_counts[s:e]),
                               tf.constant(insert[s:e]), t_t).numpy())
    curves = np.concatenate(scores).reshape(b, 2, steps + 1) if b else np.zeros((0, 2, steps + 1))
    deletion, insertion = curves[:, 0], curves[:, 1]
    return {
        "fractions": fractions,
        "deletion": deletion,
        "insertion": insertion,
        "deletion_auc": np.trapezoid(deletion, fractions, axis=1),
        "insertion_auc": np.trapezoid(insertion, fractions, axis=1),
        "targets": t,
    }


def to_frame(result: dict[str, np.ndarray], ids: Sequence | None = None) -> pd.DataFrame:
    """One row per image: ``id``, ``target``, ``deletion_auc``, ``insertion_auc``."""
    n = len(result["targets"])
    return pd.DataFrame({
        "id": list(range(n)) if ids is None else list(ids),
        "target": result["targets"],
        "deletion_auc": result["deletion_auc"],
        "insertion_auc": result["insertion_auc"],
    })
