"""Statistics over predictions: bootstrap confidence intervals, McNemar, DeLong, mean +- std.

- :func:`bootstrap_metrics`: 95 % percentile-bootstrap intervals of the headline metrics of one
  prediction set, all resamples at once (vectorised), seeded.
- :func:`bootstrap_ci`: the same for any statistic ``f(*arrays) -> float`` (a plain loop).
- :func:`mcnemar_test`: paired test of two classifiers' correctness on the same images.
- :func:`delong_test`: paired test of two AUCs on the same images (fast DeLong, Sun & Xu 2014).
- :func:`mean_std`: mean +- std of repeated runs' metrics.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import sparse, stats

from breastcam.evaluate.paper_metrics import PAPER_METRICS, definition_metrics, parse_definition
from breastcam.errors import DataError
from breastcam.evaluate.metrics import (
    DEFAULT_IBA_ALPHA,
    DEFAULT_IBA_SQUARED,
    HEADLINE_METRICS,
    check_predictions,
    confusion_metrics,
    minority_index,
)

# --- bootstrap --------------------------------------------------------------------------------


def _resample_counts(
    rng: np.random.Generator, y: np.ndarray, n_boot: int, stratify: bool
) -> np.ndarray:
    """``[n_boot, N]`` multiplicities of each image in each resample (rows sum to N)."""
    n = len(y)
    if not stratify:
        idx = rng.integers(0, n, size=(n_boot, n))
    else:
        # Resample within each class: every resample keeps the test set's class counts.
        idx = np.concatenate(
            [members[rng.integers(0, len(members), size=(n_boot, len(members)))]
             for members in (np.flatnonzero(y == c) for c in np.unique(y))],
            axis=1,
        )
    flat = (idx + n * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _draw(
    rng: np.random.Generator, y: np.ndarray, n_boot: int, stratify: bool, max_rounds: int = 1000
) -> tuple[np.ndarray, int]:
    """Resample counts in which every class of ``y`` occurs; also the number of redraws.

    A resample that lacks a class present in the test set (possible for rare classes) leaves
    sensitivity, AUC, G-mean ... undefined; it is drawn again, which is the same as dropping it
    (a conditional bootstrap). The count of redrawn resamples is reported.
    """
    classes = np.unique(y)
    onehot = (y[:, None] == classes[None, :]).astype(np.float64)
    counts = _resample_counts(rng, y, n_boot, stratify)
    redrawn = 0
    for _ in range(max_rounds):
        bad = np.flatnonzero((counts @ onehot).min(axis=1) == 0)
        if bad.size == 0:
            return counts, redrawn
        redrawn += bad.size
        counts[bad] = _resample_counts(rng, y, bad.size, stratify)
    raise DataError(
        "bootstrap: could not draw resamples holding every class; the test set is too small "
        "(use stratify=True)"
    )


def weighted_auc(y_pos: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC (ties count 1/2) of ``score`` for ``y_pos`` under each row of ``weights``.

    ``weights`` is ``[B, N]`` (bootstrap multiplicities); returns ``[B]``. With all weights 1
    this is ``sklearn.metrics.roc_auc_score(y_pos, score)``.
    """
    y_pos = np.asarray(y_pos, bool)
    _, group = np.unique(score, return_inverse=True)
    n_groups = int(group.max()) + 1
    neg = np.flatnonzero(~y_pos)
    pos = np.flatnonzero(y_pos)
    # Weight of negatives at each distinct score, then the weight strictly below each score.
    to_group = sparse.csr_matrix(
        (np.ones(neg.size), (np.arange(neg.size), group[neg])), shape=(neg.size, n_groups)
    )
    neg_at = np.asarray((to_group.T @ weights[:, neg].T).T)
    neg_below = np.cumsum(neg_at, axis=1) - neg_at
    wins = (weights[:, pos] * (neg_below[:, group[pos]] + 0.5 * neg_at[:, group[pos]])).sum(axis=1)
    w_pos, w_neg = weights[:, pos].sum(axis=1), weights[:, neg].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins / (w_pos * w_neg)


def bootstrap_metrics(
    y_true: Any,
    y_prob: Any,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    stratify: bool = False,
    iba_alpha: float = DEFAULT_IBA_ALPHA,
    iba_squared: bool = DEFAULT_IBA_SQUARED,
    metrics: Sequence[str] = HEADLINE_METRICS,
    chunk: int = 250,
    definitions: Sequence[str] = (),
) -> dict[str, Any]:
    """Percentile-bootstrap confidence intervals of the headline metrics.

    Resamples images with replacement (``stratify=True``: within each class), ``n_bootstrap``
    times from ``numpy.random.default_rng(seed)``, and recomputes every metric on each resample
    with the same definitions as :func:`classification_metrics`. Returns ``{"ci": {metric:
    [low, high]}, "n_bootstrap", "seed", "confidence", "stratified", "redrawn"}``; a metric
    undefined on the test set itself (AUC with one class) gets ``None``. ``definitions`` (names
    of :mod:`breastcam.evaluate.paper_metrics` definitions) adds ``"paper_ci": {definition:
    {metric: [low, high]}}`` from the same resamples.
    """
    y_true, y_prob, _ = check_predictions(y_true, y_prob)
    if int(n_bootstrap) < 1:
        raise DataError(f"n_bootstrap must be >= 1, got {n_bootstrap!r}")
    unknown = set(metrics) - set(HEADLINE_METRICS)
    if unknown:
        raise DataError(f"no bootstrap for {sorted(unknown)}; choose from {HEADLINE_METRICS}")
    k = y_prob.shape[1]
    y_pred = np.argmax(y_prob, axis=1)
    rng = np.random.default_rng(seed)
    counts, redrawn = _draw(rng, y_true, int(n_bootstrap), stratify)
    cell = (y_true * k + y_pred)[:, None] == np.arange(k * k)[None, :]
    cell = sparse.csr_matrix(cell.astype(np.float64))
    minority = minority_index(y_true, k)
    present = np.unique(y_true)

    values: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    paper = {name: parse_definition(name).single() for name in definitions}
    paper_values: dict[str, dict[str, list[np.ndarray]]] = {
        name: {m: [] for m in PAPER_METRICS} for name in paper}
    for start in range(0, len(counts), chunk):
        w = counts[start : start + chunk]
        cm = np.asarray((cell.T @ w.T).T).reshape(-1, k, k)
        for name, d in paper.items():
            for m, v in definition_metrics(cm, d).items():
                paper_values[name][m].append(v)
        derived = confusion_metrics(cm, minority=minority, iba_alpha=iba_alpha,
                                    iba_squared=iba_squared)
        for m in metrics:
            if m != "roc_auc":
                values[m].append(derived[m])
        if "roc_auc" in metrics:
            if present.size < 2 or (k > 2 and present.size < k):
                values["roc_auc"].append(np.full(len(w), np.nan))
            elif k == 2:
                values["roc_auc"].append(weighted_auc(y_true == 1, y_prob[:, 1], w))
            else:
                per_class = [weighted_auc(y_true == c, y_prob[:, c], w) for c in range(k)]
                values["roc_auc"].append(np.mean(per_class, axis=0))

    tail = (1.0 - confidence) / 2.0 * 100.0

    def percentile(chunks: list[np.ndarray]) -> list[float] | None:
        v = np.concatenate(chunks)
        v = v[np.isfinite(v)]
        return None if v.size == 0 else [float(x) for x in np.percentile(v, [tail, 100 - tail])]

    ci = {m: percentile(values[m]) for m in metrics}
    extra = {"paper_ci": {name: {m: percentile(v) for m, v in per.items()}
                          for name, per in paper_values.items()}} if paper else {}
    return {
        **extra,
        "ci": ci,
        "n_bootstrap": int(n_bootstrap),
        "seed": int(seed),
        "confidence": float(confidence),
        "stratified": bool(stratify),
        "redrawn": int(redrawn),
    }


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: Any,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic(*arrays)``, resampling rows jointly.

    A general (slow, looped) companion of :func:`bootstrap_metrics` for any per-image measure,
    e.g. CAM localisation scores. Resamples where the statistic is NaN or raises
    ``ValueError`` (undefined, e.g. one class only) are left out.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise DataError(f"bootstrap_ci: arrays differ in length {[len(a) for a in arrays]}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(n_bootstrap)):
        idx = rng.integers(0, n, size=n)
        try:
            v = float(statistic(*(a[idx] for a in arrays)))
        except ValueError:
            continue
        if math.isfinite(v):
            values.append(v)
    if not values:
        raise DataError("bootstrap_ci: the statistic is undefined on every resample")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# --- paired tests -----------------------------------------------------------------------------


def mcnemar_test(
    y_true: Any, pred_a: Any, pred_b: Any, *, exact_below: int = 25
) -> dict[str, Any]:
    """McNemar's test of two classifiers on the same images.

    ``b`` = images A gets right and B wrong, ``c`` = the reverse. With fewer than
    ``exact_below`` discordant pairs the exact two-sided binomial test
    (``scipy.stats.binomtest(b, b + c, 0.5)``) is used, else the chi-square statistic with
    continuity correction ``(|b - c| - 1)^2 / (b + c)`` on 1 degree of freedom.
    """
    y_true, pred_a, pred_b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    if not (len(y_true) == len(pred_a) == len(pred_b)):
        raise DataError("mcnemar_test: y_true, pred_a and pred_b must have the same length")
    ok_a, ok_b = pred_a == y_true, pred_b == y_true
    b = int(np.sum(ok_a & ~ok_b))
    c = int(np.sum(~ok_a & ok_b))
    table = [[int(np.sum(ok_a & ok_b)), b], [c, int(np.sum(~ok_a & ~ok_b))]]
    return {"table": table, "b": b, "c": c, "n_discordant": b + c,
            **mcnemar_from_counts(b, c, exact_below=exact_below)}


def mcnemar_from_counts(b: int, c: int, *, exact_below: int = 25) -> dict[str, Any]:
    """McNemar's statistic and p-value from the two discordant counts (see :func:`mcnemar_test`)."""
    n = int(b) + int(c)
    if n == 0:
        return {"method": "exact", "statistic": 0.0, "p_value": 1.0}
    if n < exact_below:
        p = stats.binomtest(int(b), n, 0.5, alternative="two-sided").pvalue
        return {"method": "exact", "statistic": float(min(b, c)), "p_value": float(min(p, 1.0))}
    stat = (abs(int(b) - int(c)) - 1.0) ** 2 / n
    return {"method": "chi2_cc", "statistic": float(stat), "p_value": float(stats.chi2.sf(stat, 1))}


def _fast_delong(y_pos: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs ``[k]`` and their DeLong covariance ``[k, k]`` for ``scores [k, N]`` (Sun & Xu 2014).

    Midranks (``scipy.stats.rankdata(method="average")``) give the structural components
    without the O(m n) pairwise kernel.
    """
    pos, neg = scores[:, y_pos], scores[:, ~y_pos]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise DataError(
            f"DeLong needs at least 2 positive and 2 negative images, got {m} and {n}"
        )
    tx = stats.rankdata(pos, axis=1)
    ty = stats.rankdata(neg, axis=1)
    tz = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = tz[:, :m].sum(axis=1) / m / n - (m + 1.0) / (2.0 * n)
    v01 = (tz[:, :m] - tx) / n  # per positive: fraction of negatives it beats
    v10 = 1.0 - (tz[:, m:] - ty) / m  # per negative: fraction of positives above it
    sx = np.atleast_2d(np.cov(v01))
    sy = np.atleast_2d(np.cov(v10))
    return aucs, sx / m + sy / n


def delong_roc_variance(y_true: Any, score: Any) -> tuple[float, float]:
    """``(auc, variance)`` of one score by DeLong's method; ``y_true`` is 0/1 (1 = positive)."""
    y_pos = np.asarray(y_true).astype(bool)
    aucs, cov = _fast_delong(y_pos, np.asarray(score, dtype=np.float64)[None, :])
    return float(aucs[0]), float(cov[0, 0])


def delong_test(y_true: Any, score_a: Any, score_b: Any) -> dict[str, Any]:
    """DeLong's test of ``AUC_a == AUC_b`` for two scores of the same images (two-sided).

    ``y_true`` is 0/1 (1 = positive). Returns the AUCs, their difference, variances,
    covariance, ``z`` and ``p_value``. Identical predictors give ``z = 0, p = 1``.
    """
    y_pos = np.asarray(y_true).astype(bool)
    scores = np.vstack([np.asarray(score_a, float), np.asarray(score_b, float)])
    if scores.shape[1] != len(y_pos):
        raise DataError("delong_test: y_true, score_a and score_b must have the same length")
    aucs, cov = _fast_delong(y_pos, scores)
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if var <= 1e-15:
        z, p = (0.0, 1.0) if abs(diff) < 1e-12 else (math.copysign(math.inf, diff), 0.0)
    else:
        z = diff / math.sqrt(var)
        p = float(2.0 * stats.norm.sf(abs(z)))
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "auc_diff": diff,
        "var_a": float(cov[0, 0]),
        "var_b": float(cov[1, 1]),
        "covariance": float(cov[0, 1]),
        "z": float(z),
        "p_value": float(p),
    }


# --- repeated runs ----------------------------------------------------------------------------

# Top-level keys of metrics.json that are not metrics to average over runs.
NON_METRIC_KEYS = frozenset({"params", "ci", "bootstrap", "run", "confusion_matrix", "support"})


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a metrics dict as ``{"f1_per_class.benign": 0.9, ...}``.

    Skips :data:`NON_METRIC_KEYS` (settings, intervals, counts), strings and ``None``.
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key in NON_METRIC_KEYS and not prefix:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, prefix=f"{name}."))
        elif isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
            continue
        elif isinstance(value, (int, float, np.integer, np.floating)):
            out[name] = float(value)
    return out


def mean_std(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{metric: {mean, std, n, min, max}}`` over the runs' flattened metrics.

    ``std`` is the sample standard deviation (ddof = 1; 0 for a single run). A metric missing
    or ``None`` in some runs is aggregated over the runs that have it (``n`` says how many).
    """
    flat = [flatten_metrics(r) for r in runs]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    out = {}
    for key in keys:
        v = np.array([f[key] for f in flat if key in f], dtype=np.float64)
        out[key] = {
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "n": int(v.size),
            "min": float(v.min()),
            "max": float(v.max()),
        }
    return out


# --- intervals of repeated runs -----------------------------------------------------------------

# Metrics that are proportions: their intervals are kept inside [0, 1]. IBA with alpha <= 1 is
# at most 1 too ((1 + alpha (s - t)) sqrt(s t) peaks at s = t = 1). Anything else (loss, counts,
# seconds) is non-negative.
PROPORTION_METRICS = frozenset(HEADLINE_METRICS) | {
    "balanced_accuracy", "ppv", "npv", "f1_positive", "precision_macro", "precision_weighted",
    "recall_macro", "recall_weighted", "ece", "mce", "brier"}
MIN_RUNS_FOR_T = 3


def metric_range(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: ``(0, 1)`` for proportions, else ``(0, inf)``."""
    base = metric.split(".")[0]
    if base in PROPORTION_METRICS or base.endswith("_per_class"):
        return 0.0, 1.0
    return 0.0, math.inf


def runs_interval(values: Sequence[float], metric: str, *, confidence: float = 0.95,
                  min_runs: int = MIN_RUNS_FOR_T) -> dict[str, Any]:
    """A t-interval of the mean of repeated runs, kept inside the metric's range.

    Returns ``{std, low, high, method, decisive}``. The interval is clipped to
    :func:`metric_range`; ``decisive`` is False when it had to be clipped or when fewer than
    ``min_runs`` runs make it (with 2 runs the 95 % t quantile is 12.7: the interval says
    nothing), and a report must then not judge a published number by it. ``method`` says all
    of this in words.
    """
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    n = int(v.size)
    if n == 0:
        raise DataError(f"runs_interval: no finite values of {metric!r}")
    if n < 2:
        return {"std": 0.0, "low": math.nan, "high": math.nan, "decisive": False,
                "method": "one run: no interval over runs"}
    std = float(np.std(v, ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * std / math.sqrt(n)
    mean = float(v.mean())
    lo_range, hi_range = metric_range(metric)
    low, high = max(mean - half, lo_range), min(mean + half, hi_range)
    clipped = (mean - half < lo_range) or (mean + half > hi_range)
    method = f"t-interval of the mean of {n} runs"
    if clipped:
        method += f", clipped to [{lo_range:g}, {hi_range:g}]"
    decisive = n >= min_runs and not clipped
    if not decisive:
        why = f"fewer than {min_runs} runs" if n < min_runs else "wider than the metric's range"
        method += f" ({why}: not used to judge the published number)"
    return {"std": std, "low": float(low), "high": float(high), "method": method,
            "decisive": bool(decisive)}


def pooled_bootstrap(y_trues: Sequence[Any], y_probs: Sequence[Any], *, n_bootstrap: int = 1000,
                     seed: int = 0, confidence: float = 0.95,
                     definitions: Sequence[str] = ()) -> dict[str, Any]:
    """Percentile-bootstrap intervals over the POOLED test predictions of several runs.

    The runs' (folds' / seeds') test predictions are concatenated and resampled as one set
    (:func:`bootstrap_metrics`): a percentile interval of a proportion never leaves [0, 1],
    whatever the number of runs, where a t-interval over 2 runs spans far beyond it. It
    measures test-set sampling, not run-to-run training variation. Adds ``method`` (words).
    """
    if len(y_trues) != len(y_probs) or not y_trues:
        raise DataError(f"pooled_bootstrap: {len(y_trues)} label arrays for {len(y_probs)} "
                        "probability arrays (one of each per run, at least one run)")
    y_true = np.concatenate([np.asarray(y) for y in y_trues])
    y_prob = np.concatenate([np.asarray(p, dtype=np.float64) for p in y_probs])
    out = bootstrap_metrics(y_true, y_prob, n_bootstrap=n_bootstrap, seed=seed,
                            confidence=confidence, definitions=definitions)
    out["method"] = (f"percentile bootstrap over the pooled test predictions of {len(y_trues)} "
                     f"runs ({len(y_true)} images, {int(n_bootstrap)} resamples, seed {int(seed)})")
    return out


def bootstrap_method(metrics: Mapping[str, Any]) -> str:
    """How a ``metrics.json``'s ``ci`` was made, in words (from its ``bootstrap`` block)."""
    boot = metrics.get("bootstrap") or {}
    if not boot:
        return "percentile bootstrap over the test images"
    strat = ", stratified" if boot.get("stratified") else ""
    return (f"percentile bootstrap over the test images ({boot.get('n_bootstrap')} resamples"
            f"{strat}, seed {boot.get('seed')})")
