"""ROAD: RemOve And Debias (Rong et al., ICML 2022), a faithfulness score that does not leak.

Deletion (:mod:`breastcam.explain.faithfulness`) replaces pixels by a baseline, and the shape of
the replaced region alone tells the model which class the map pointed at. ROAD removes them by
*noisy linear imputation* instead: every removed pixel takes the weighted mean of its 8
neighbours (weight 1/6 for the 4 direct ones, 1/12 for the diagonals; neighbours outside the image
drop out), which for the removed set as a whole is one sparse linear system per image, solved
for all channels at once; then Gaussian noise is added to the imputed pixels only.

For each fraction ``p`` (default 10 %, 20 %, ..., 90 %, as the paper):

- **MoRF** (most relevant first): the top ``p`` of the pixels by the map are imputed — a
  faithful map makes the class probability fall fast (lower mean is better);
- **LeRF** (least relevant first): the bottom ``p`` — the probability should hold (higher is better).

The summary of each curve is its mean over the fractions; ``road_gap`` = LeRF - MoRF (higher is
better). Pixels are ranked as deletion ranks them (ties in raster order). The noise standard
deviation is ``noise`` times the image's own value range (images are in the model's
preprocessed domain, whose range depends on the preprocessing), seeded.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import spsolve

from breastcam.errors import ConfigError
from breastcam.explain.base import to_targets
from breastcam.explain.faithfulness import images_and_maps, saliency_ranks, scorer

FRACTIONS = tuple(round(0.1 * k, 1) for k in range(1, 10))
# (row offset, column offset, weight): the paper's neighbourhood
NEIGHBOURS = ((0, 1, 1 / 6), (0, -1, 1 / 6), (1, 0, 1 / 6), (-1, 0, 1 / 6),
              (1, 1, 1 / 12), (1, -1, 1 / 12), (-1, 1, 1 / 12), (-1, -1, 1 / 12))


def linear_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``image`` ``[H, W, C]`` with the ``removed`` pixels (``[H, W]`` bool) set so that each is
    the weighted mean of its neighbours inside the image (the noise-free part of ROAD)."""
    h, w = removed.shape
    flat = image.reshape(h * w, -1).astype(np.float64)
    unknown = np.flatnonzero(removed.ravel())
    if not len(unknown):
        return image.copy()
    if len(unknown) == h * w:
        raise ConfigError("ROAD cannot impute an image with every pixel removed (no neighbour is known)")
    index = np.full(h * w, -1, np.int64)
    index[unknown] = np.arange(len(unknown))
    rows, cols = np.divmod(unknown, w)
    diag = np.zeros(len(unknown))
    rhs = np.zeros((len(unknown), flat.shape[1]))
    a_rows, a_cols, a_vals = [], [], []
    for dr, dc, weight in NEIGHBOURS:
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        me = np.flatnonzero(inside)
        other = r[inside] * w + c[inside]
        diag[me] += weight
        is_unknown = index[other] >= 0
        a_rows.append(me[is_unknown])
        a_cols.append(index[other[is_unknown]])
        a_vals.append(np.full(int(is_unknown.sum()), -weight))
        np.add.at(rhs, me[~is_unknown], weight * flat[other[~is_unknown]])
    a_rows.append(np.arange(len(unknown)))
    a_cols.append(np.arange(len(unknown)))
    a_vals.append(diag)
    system = csr_matrix((np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))),
                        shape=(len(unknown), len(unknown)))
    solved = spsolve(system.tocsc(), rhs)
    out = flat.copy()
    out[unknown] = solved.reshape(len(unknown), -1)
    return out.reshape(image.shape).astype(image.dtype)


def noisy_linear_imputation(image: np.ndarray, removed: np.ndarray, noise: float,
                            rng: np.random.Generator) -> np.ndarray:
    """:func:`linear_imputation` plus ``N(0, noise x the image's value range)`` on the removed pixels."""
    out = linear_imputation(image, removed)
    if noise > 0:
        span = float(np.ptp(image)) or 1.0
        out[removed] += rng.normal(0.0, noise * span, out[removed].shape).astype(out.dtype)
    return out


def road(
    model: keras.Model,
    images,
    cams,
    targets=None,
    fractions: Sequence[float] = FRACTIONS,
    noise: float = 0.01,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """MoRF and LeRF curves of each image and their means.

    Returns ``fractions`` ``[P]``, ``morf`` and ``lerf`` ``[B, P]`` (target-class probabilities),
    ``road_morf``, ``road_lerf`` and ``road_gap`` ``[B]``, ``targets`` ``[B]``.
    """
    fractions = np.asarray(fractions, np.float64)
    if not len(fractions) or (fractions <= 0).any() or (fractions >= 1).any():
        raise ConfigError(f"ROAD fractions must lie in (0, 1), got {fractions.tolist()}")
    x, cams = images_and_maps(images, cams)
    _, predict_fn = scorer(model)

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.concatenate([predict_fn(tf.constant(batch[s:s + batch_size])).numpy()
                               for s in range(0, len(batch), batch_size)])

    t = to_targets(targets, len(x))
    if (t < 0).any():
        t = np.where(t < 0, predict(x).argmax(axis=-1), t).astype(np.int32)
    h, w = x.shape[1:3]
    ranks = saliency_ranks(cams, (h, w))
    counts = np.rint(fractions * h * w).astype(np.int64)
    rng = np.random.default_rng(seed)
    perturbed = np.empty((len(x), 2, len(fractions), *x.shape[1:]), np.float32)
    for i in range(len(x)):
        for k, n in enumerate(counts):
            most = ranks[i] < n  # MoRF: the n most relevant pixels removed
            least = ranks[i] >= h * w - n  # LeRF: the n least relevant
            perturbed[i, 0, k] = noisy_linear_imputation(x[i], most, noise, rng)
            perturbed[i, 1, k] = noisy_linear_imputation(x[i], least, noise, rng)
    probs = predict(perturbed.reshape(-1, *x.shape[1:])).reshape(len(x), 2, len(fractions), -1)
    curves = np.take_along_axis(probs, t[:, None, None, None].astype(np.int64), axis=-1)[..., 0]
    morf, lerf = curves[:, 0], curves[:, 1]
    return {
        "fractions": fractions,
        "morf": morf,
        "lerf": lerf,
        "road_morf": morf.mean(axis=1),
        "road_lerf": lerf.mean(axis=1),
        "road_gap": lerf.mean(axis=1) - morf.mean(axis=1),
        "targets": t,
    }
