"""The exact masked percentiles and the pseudo-angle behind the TensorFlow Macenko."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from breastcam.stain.percentiles import angle_of_pseudo, pseudo_angle, upper_percentiles


def _masked(rows: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.full((len(rows), width), -np.inf, np.float32)
    rng = np.random.default_rng(0)
    for i, row in enumerate(rows):
        out[i, rng.choice(width, len(row), replace=False)] = row
    return out, np.array([len(r) for r in rows], np.int32)


@pytest.mark.parametrize("q", [99.0, 90.0, 50.0, 100.0])
def test_matches_numpy_percentile(q):
    rng = np.random.default_rng(1)
    rows = [
        rng.normal(size=5000).astype(np.float32),
        rng.integers(0, 5, size=3000).astype(np.float32),  # many ties
        rng.exponential(size=1).astype(np.float32),  # one valid element
        rng.uniform(size=4800).astype(np.float32),
    ]
    values, counts = _masked(rows, 6000)
    got = upper_percentiles(tf.constant(values), tf.constant(counts), q).numpy()
    expected = [np.percentile(r.astype(np.float64), q) for r in rows]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_exact_when_the_sample_misleads():
    # The few large values all sit where the strided sample looks, so the sample's threshold
    # keeps fewer elements than the rank needs: the check catches it and the row is kept whole.
    rng = np.random.default_rng(2)
    row = rng.uniform(0.0, 1.0, 20000).astype(np.float32)
    row[np.arange(0, 16 * 40, 16)] = np.linspace(10.0, 20.0, 40, dtype=np.float32)
    got = upper_percentiles(tf.constant(row[None]), tf.constant([20000]), 99.0).numpy()[0]
    assert got == pytest.approx(np.percentile(row.astype(np.float64), 99.0), rel=1e-6)


def test_row_without_valid_values_is_not_finite():
    values = np.full((2, 100), -np.inf, np.float32)
    values[1, :50] = np.arange(50)
    got = upper_percentiles(tf.constant(values), tf.constant([0, 50]), 99.0).numpy()
    assert not np.isfinite(got[0])
    assert got[1] == pytest.approx(np.percentile(np.arange(50.0), 99.0))


def test_pseudo_angle_orders_like_atan2_and_inverts():
    theta = np.linspace(-np.pi + 1e-3, np.pi, 2001)
    x, y = 2.0 * np.cos(theta), 2.0 * np.sin(theta)
    key = pseudo_angle(tf.constant(x, tf.float32), tf.constant(y, tf.float32)).numpy()
    assert np.all(np.diff(key) > 0)
    back = angle_of_pseudo(tf.constant(key)).numpy()
    np.testing.assert_allclose(back, theta, atol=1e-5)
