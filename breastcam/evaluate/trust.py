"""Trust in a prediction: temperature scaling, split-conformal prediction sets, selective risk.

Plain functions of ``(y_true, y_prob)`` arrays, as scikit-learn's metrics:

- :func:`fit_temperature` — Guo et al. 2017: one scalar T > 0 minimising the NLL of
  ``softmax(log p / T)`` on held-out predictions (the network's probabilities stand in for its
  logits: ``log p`` differs from the logits by a per-image constant, which softmax ignores).
- :func:`fit_vector_scaling` — Guo et al.'s vector scaling: a scale and a bias per class,
  ``softmax(w * log p + b)``, fitted by NLL (L-BFGS with the exact gradient; a small L2 pull
  towards ``w = 1, b = 0``, worth one image, keeps it finite on separable validation sets). On log-probabilities,
  as the network serves softmax: with per-class scales this is not the logits' vector scaling,
  and says so where it is recorded. :func:`apply_calibration` applies either map.
- :func:`conformal_threshold` / :func:`prediction_sets` — split conformal prediction
  (Angelopoulos & Bates 2021): scores of the true class on a calibration set, the
  ``ceil((n + 1)(1 - alpha)) / n`` empirical quantile as the threshold, and every class whose
  score is within it. ``score="lac"``: ``1 - p_y`` (least ambiguous sets); ``"aps"``: the
  probability mass of the classes ranked up to and including y (adaptive sets; the
  non-randomised form, so coverage is at least ``1 - alpha``, not exactly).
- :func:`aurc` / :func:`e_aurc` / :func:`selective_metrics` — Geifman & El-Yaniv: the area
  under the risk-coverage curve when images are accepted most confident first, its excess over
  the best possible order, and accuracy / sensitivity at fixed coverages.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from breastcam.errors import DataError, UsageError

SCORES = ("lac", "aps")
_EPS = 1e-12


def apply_temperature(y_prob: Any, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: the probabilities a temperature T gives."""
    logp = np.log(np.clip(np.asarray(y_prob, dtype=np.float64), _EPS, 1.0)) / float(temperature)
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def nll(y_true: Any, y_prob: Any) -> float:
    """Mean negative log-likelihood of the true class."""
    y_prob = np.asarray(y_prob, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    return float(-np.mean(np.log(np.clip(y_prob[np.arange(len(y_true)), y_true], _EPS, 1.0))))


def fit_temperature(y_true: Any, y_prob: Any, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature minimising the NLL of ``y_prob`` on ``y_true`` (bounded scalar search
    over log T: the NLL is convex in 1/T)."""
    from scipy.optimize import minimize_scalar

    y_true, y_prob = _check(y_true, y_prob)
    res = minimize_scalar(lambda log_t: nll(y_true, apply_temperature(y_prob, math.exp(log_t))),
                          bounds=tuple(math.log(b) for b in bounds), method="bounded",
                          options={"xatol": 1e-6})
    return float(math.exp(res.x))


def _vector_probs(logp: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    z = logp * scale + bias
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def fit_vector_scaling(y_true: Any, y_prob: Any, prior: float = 1.0) -> dict[str, list[float]]:
    """``{"scale": [K], "bias": [K]}`` minimising the summed NLL of ``softmax(scale * log p +
    bias)`` plus ``prior`` times the squared distance from the identity map (a pull worth about
    one image: it keeps the fit finite on a separable validation set, and fades as N grows)."""
    from scipy.optimize import minimize

    y_true, y_prob = _check(y_true, y_prob)
    n, k = y_prob.shape
    logp = np.log(np.clip(y_prob, _EPS, 1.0))
    onehot = np.eye(k)[y_true]

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        scale, bias = theta[:k], theta[k:]
        p = _vector_probs(logp, scale, bias)
        loss = -np.mean(np.log(np.clip(p[np.arange(n), y_true], _EPS, 1.0)))
        l2 = prior / n
        loss += l2 * (np.sum((scale - 1.0) ** 2) + np.sum(bias ** 2))
        diff = (p - onehot) / n  # d loss / d z
        grad = np.concatenate([(diff * logp).sum(axis=0) + 2 * l2 * (scale - 1.0),
                               diff.sum(axis=0) + 2 * l2 * bias])
        return float(loss), grad

    res = minimize(fun, np.concatenate([np.ones(k), np.zeros(k)]), jac=True, method="L-BFGS-B")
    return {"scale": [float(v) for v in res.x[:k]], "bias": [float(v) for v in res.x[k:]]}


def apply_vector_scaling(y_prob: Any, scale: Any, bias: Any) -> np.ndarray:
    """``softmax(scale * log p + bias)``."""
    logp = np.log(np.clip(np.asarray(y_prob, dtype=np.float64), _EPS, 1.0))
    return _vector_probs(logp, np.asarray(scale, np.float64), np.asarray(bias, np.float64))


def apply_calibration(y_prob: Any, calibration: Any) -> np.ndarray:
    """The probabilities a run's ``calibration.json`` serves (its ``temperature`` or ``vector``
    map; unchanged without one)."""
    calibration = calibration or {}
    if calibration.get("vector"):
        return apply_vector_scaling(y_prob, calibration["vector"]["scale"], calibration["vector"]["bias"])
    if calibration.get("temperature") is not None:
        return apply_temperature(y_prob, calibration["temperature"])
    return np.asarray(y_prob, dtype=np.float64)


CALIBRATION_METHODS = ("temperature", "vector")


def conformity_scores(y_prob: Any, score: str = "lac") -> np.ndarray:
    """``[N, K]``: the score each class would have as the true one (lower = more conforming)."""
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if score == "lac":
        return 1.0 - y_prob
    if score == "aps":
        order = np.argsort(-y_prob, axis=1, kind="stable")
        sorted_p = np.take_along_axis(y_prob, order, axis=1)
        cum = np.cumsum(sorted_p, axis=1)
        out = np.empty_like(y_prob)
        np.put_along_axis(out, order, cum, axis=1)
        return out
    raise UsageError(f"conformal score {score!r}; choose one of {', '.join(SCORES)}")


def conformal_threshold(y_true: Any, y_prob: Any, alpha: float = 0.1, score: str = "lac") -> float:
    """The split-conformal threshold of ``alpha`` from a calibration set (``inf`` when the set
    is too small for that alpha: every class is then in every set)."""
    if not 0.0 < float(alpha) < 1.0:
        raise UsageError(f"alpha must be in (0, 1), got {alpha!r} (0.1: sets that hold the true class 90 % of the time)")
    y_true, y_prob = _check(y_true, y_prob)
    s = conformity_scores(y_prob, score)[np.arange(len(y_true)), y_true]
    n = len(s)
    rank = math.ceil((n + 1) * (1.0 - float(alpha)))
    if rank > n:
        return math.inf
    return float(np.sort(s)[rank - 1])


def prediction_sets(y_prob: Any, threshold: float, score: str = "lac") -> np.ndarray:
    """``[N, K]`` bool: the classes whose score is within ``threshold``."""
    return conformity_scores(y_prob, score) <= threshold + 1e-12


def entropy(y_prob: Any) -> np.ndarray:
    """Predictive entropy (nats) of each row: the uncertainty reported beside a prediction."""
    p = np.clip(np.asarray(y_prob, dtype=np.float64), _EPS, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def risk_coverage(y_true: Any, y_prob: Any, confidence: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage, risk)`` when images are accepted in order of decreasing ``confidence``
    (default: the top probability); risk = error rate among the accepted."""
    y_true, y_prob = _check(y_true, y_prob)
    conf = y_prob.max(axis=1) if confidence is None else np.asarray(confidence, dtype=np.float64)
    order = np.argsort(-conf, kind="stable")
    errors = (y_prob.argmax(axis=1) != y_true)[order].astype(np.float64)
    n = len(errors)
    accepted = np.arange(1, n + 1)
    return accepted / n, np.cumsum(errors) / accepted


def aurc(y_true: Any, y_prob: Any, confidence: Any | None = None) -> float:
    """Area under the risk-coverage curve (mean of the risks at each coverage k/N)."""
    _, risk = risk_coverage(y_true, y_prob, confidence)
    return float(risk.mean())


def e_aurc(y_true: Any, y_prob: Any, confidence: Any | None = None) -> float:
    """AURC minus that of the best order (all errors last) at the same error rate."""
    y_true, y_prob = _check(y_true, y_prob)
    errors = int((y_prob.argmax(axis=1) != y_true).sum())
    n = len(y_true)
    accepted = np.arange(1, n + 1)
    best = np.maximum(0, accepted - (n - errors)) / accepted
    return aurc(y_true, y_prob, confidence) - float(best.mean())


def selective_metrics(y_true: Any, y_prob: Any, coverages=(0.8, 0.9, 0.95)) -> dict[str, dict[str, float | None]]:
    """Accuracy (and, for two classes, sensitivity) among the most confident ``c`` of images."""
    y_true, y_prob = _check(y_true, y_prob)
    order = np.argsort(-y_prob.max(axis=1), kind="stable")
    out = {}
    for c in coverages:
        keep = order[: max(1, int(round(c * len(order))))]
        pred, truth = y_prob[keep].argmax(axis=1), y_true[keep]
        row = {"accuracy": float((pred == truth).mean()), "n": int(len(keep))}
        if y_prob.shape[1] == 2:
            pos = truth == 1
            row["sensitivity"] = float((pred[pos] == 1).mean()) if pos.any() else None
        out[f"{int(round(c * 100))}"] = row
    return out


def _check(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim != 2 or len(y_prob) != len(y_true) or not len(y_true):
        raise DataError(f"need y_true [N] and y_prob [N, K] with N > 0, got {y_true.shape} and {y_prob.shape}")
    if y_true.min() < 0 or y_true.max() >= y_prob.shape[1]:
        raise DataError(f"y_true holds classes outside [0, {y_prob.shape[1]})")
    return y_true, y_prob
