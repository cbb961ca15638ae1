"""Exact NumPy-style percentiles of masked rows in TensorFlow, without sorting whole rows.

Macenko needs the 1st and 99th percentiles of per-image values whose number varies per image
(tissue pixels only). ``tf.math.top_k`` over rows of 322,000 values is the slow part of that on a
CPU; :func:`select_descending` first narrows each row to a little more than the elements it
needs. Also the pseudo-angle, an ordering key for ``atan2`` that costs a division.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_SAMPLE_STRIDE = 16  # the threshold pre-pass of _select_descending looks at every 16th element
_SAMPLE_MARGIN = 1.3
_LOWEST = float(np.finfo(np.float32).min)  # thresholds never go below it: -inf is never kept


def select_descending(values: tf.Tensor, ranks: tf.Tensor):
    """Per row, the elements at positions ``ranks`` and ``ranks - 1`` of the descending order.

    ``values`` [R, N] float32 (invalid entries ``-inf``; ``ranks`` must index finite ones),
    ``ranks`` [R] int32 >= 0. Exact, ties included. ``tf.math.top_k`` over whole rows is the
    slow part of a percentile on CPU, so a pre-pass picks a threshold from every 16th element
    (30 % more sampled elements than the rank needs), checks that at least ``ranks + 1``
    elements of the row reach it (else that row keeps all its finite elements), and only those
    are packed into a small dense block for ``top_k``.
    """
    rows = tf.shape(values)[0]
    sample = values[:, ::_SAMPLE_STRIDE]
    n_sample = tf.shape(sample)[1]
    want = tf.cast(tf.cast(ranks + 1, tf.float32) * (_SAMPLE_MARGIN / _SAMPLE_STRIDE), tf.int32)
    want = want + 16  # [R], >= 1
    k = tf.clip_by_value(tf.reduce_max(want), 1, n_sample)
    top_sample = tf.math.top_k(sample, k=k, sorted=True).values
    threshold = tf.gather(top_sample, tf.minimum(want, k) - 1, batch_dims=1)
    threshold = tf.where(want <= n_sample, tf.maximum(threshold, _LOWEST), _LOWEST)

    def kept(threshold):
        coords = tf.where(values >= threshold[:, None])  # [M, 2], row-major
        row_of = tf.cast(coords[:, 0], tf.int32)
        counts = tf.math.bincount(row_of, minlength=rows, maxlength=rows, dtype=tf.int32)
        return coords, row_of, counts

    coords, row_of, counts = kept(threshold)
    enough = counts >= ranks + 1
    coords, row_of, counts = tf.cond(
        tf.reduce_all(enough),
        lambda: (coords, row_of, counts),
        lambda: kept(tf.where(enough, threshold, _LOWEST)),  # rare: keep the whole row
    )
    starts = tf.cumsum(counts, exclusive=True)
    slot = tf.range(tf.shape(row_of)[0]) - tf.gather(starts, row_of)
    width_kept = tf.maximum(tf.reduce_max(counts), 1)
    dense = tf.tensor_scatter_nd_update(
        tf.fill([rows, width_kept], tf.constant(-np.inf, tf.float32)),
        tf.stack([row_of, slot], axis=1),
        tf.gather_nd(values, coords),
    )
    k2 = tf.clip_by_value(tf.reduce_max(ranks) + 1, 1, width_kept)
    top = tf.math.top_k(dense, k=k2, sorted=True).values
    at = tf.gather(top, tf.clip_by_value(ranks, 0, k2 - 1), batch_dims=1)
    before = tf.gather(top, tf.clip_by_value(ranks - 1, 0, k2 - 1), batch_dims=1)
    return at, before


def upper_percentiles(
    values: tf.Tensor, counts: tf.Tensor, q: float, transform=None
) -> tf.Tensor:
    """NumPy-style (linear) ``q``-th percentile, ``q >= 50``, of each row of ``values``.

    ``values`` is [R, N] float32 with the invalid entries set to ``-inf``; ``counts`` [R] holds
    the number of valid entries per row. Rows with no valid entry give a non-finite value.
    ``transform``, if given, maps the two order statistics (elementwise, increasing) before the
    interpolation: the percentile of ``transform(values)`` from a cheaper ordering key.
    """
    n = tf.cast(counts, tf.float64)
    pos = (q / 100.0) * (n - 1.0)  # virtual index into the ascending order, as np.percentile
    lo = tf.floor(pos)
    frac = tf.cast(pos - lo, tf.float32)
    # Ascending index i is descending index n - 1 - i; lo + 1 is the one before lo there.
    rank = tf.maximum(tf.cast(n - 1.0 - lo, tf.int32), 0)
    at_lo, at_next = select_descending(values, rank)
    if transform is not None:
        at_lo, at_next = transform(at_lo), transform(at_next)
    return at_lo + frac * (at_next - at_lo)


def pseudo_angle(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """A cheap key in (-2, 2], strictly increasing with ``atan2(y, x)`` in (-pi, pi]."""
    r = y / tf.maximum(tf.abs(x) + tf.abs(y), 1e-30)  # in [-1, 1]
    return tf.where(x >= 0, r, tf.where(y >= 0, 2.0 - r, -2.0 - r))


def angle_of_pseudo(p: tf.Tensor) -> tf.Tensor:
    """``atan2`` of a direction with pseudo-angle ``p`` (the inverse of ``pseudo_angle``)."""
    r = tf.where(p > 1.0, 2.0 - p, tf.where(p < -1.0, -2.0 - p, p))
    x = 1.0 - tf.abs(r)
    x = tf.where(tf.abs(p) > 1.0, -x, x)
    return tf.math.atan2(r, x)
