"""The trust section of a run's evaluation: calibration before / after, conformal coverage and set
size, selective prediction (AURC, E-AURC, accuracy at fixed coverage), each with a percentile
bootstrap interval over the test images; and the per-image columns ``uncertainty`` and
``prediction_set`` of ``predictions.csv``."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from breastcam.evaluate import trust
from breastcam.evaluate.calibration import brier_score, expected_calibration_error
from breastcam.evaluate.predict import read_predictions


def add_trust_columns(frame: pd.DataFrame, calibration: dict | None) -> pd.DataFrame:
    """``uncertainty`` (entropy of the served probabilities) and, when the run has conformal
    sets, ``prediction_set`` (class names joined by ``|``) and ``set_size``."""
    _, y_prob, names = read_predictions(frame)
    frame = frame.copy()
    frame["uncertainty"] = trust.entropy(y_prob)
    conformal = (calibration or {}).get("conformal")
    if conformal:
        sets = trust.prediction_sets(y_prob, conformal["threshold"], conformal["score"])
        frame["prediction_set"] = ["|".join(n for n, k in zip(names, row) if k) for row in sets]
        frame["set_size"] = sets.sum(axis=1)
    return frame


def trust_metrics(frame: pd.DataFrame, calibration: dict | None, *, n_bootstrap: int = 1000,
                  seed: int = 0, ece_bins: int = 15) -> dict:
    """The ``trust`` block of ``metrics.json`` (values and ``ci`` per value)."""
    y_true, served, _ = read_predictions(frame)
    t = (calibration or {}).get("temperature")
    raw = frame.attrs.get("raw_prob")  # the network's own probabilities (predict_run keeps them)
    if raw is None:
        # a predictions table read back from disk: a temperature can be undone, a vector map not
        raw = trust.apply_temperature(served, 1.0 / t) if t is not None else served
    calibrated = bool(calibration) and (t is not None or "raw_prob" in frame.attrs)
    measures: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
        "aurc": lambda y, p, r: trust.aurc(y, p),
        "e_aurc": lambda y, p, r: trust.e_aurc(y, p),
        "ece": lambda y, p, r: expected_calibration_error(y, p, ece_bins),
        "nll": lambda y, p, r: trust.nll(y, p),
        "brier": lambda y, p, r: brier_score(y, p),
    }
    if calibrated:
        measures.update({
            "ece_before": lambda y, p, r: expected_calibration_error(y, r, ece_bins),
            "nll_before": lambda y, p, r: trust.nll(y, r),
            "brier_before": lambda y, p, r: brier_score(y, r),
        })
    conformal = (calibration or {}).get("conformal")
    if conformal:
        def sets(p):
            return trust.prediction_sets(p, conformal["threshold"], conformal["score"])

        measures["coverage"] = lambda y, p, r: float(sets(p)[np.arange(len(y)), y].mean())
        measures["mean_set_size"] = lambda y, p, r: float(sets(p).sum(axis=1).mean())
    out: dict = {name: fn(y_true, served, raw) for name, fn in measures.items()}
    out["temperature"] = t
    out["calibration_method"] = (calibration or {}).get("method", "temperature" if t is not None else None)
    if (calibration or {}).get("vector"):
        out["vector"] = calibration["vector"]
    if conformal:
        out["alpha"] = conformal["alpha"]
        out["score"] = conformal["score"]
    out["selective"] = trust.selective_metrics(y_true, served)
    coverage, risk = trust.risk_coverage(y_true, served)
    out["risk_coverage"] = {"coverage": coverage.round(6).tolist(), "risk": risk.round(6).tolist()}
    out["ci"] = _bootstrap(measures, y_true, served, raw, n_bootstrap, seed)
    return out


def _bootstrap(measures, y_true, served, raw, n: int, seed: int) -> dict:
    if n <= 0:
        return {}
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in measures}
    for _ in range(n):
        idx = rng.integers(0, len(y_true), len(y_true))
        for name, fn in measures.items():
            draws[name].append(fn(y_true[idx], served[idx], raw[idx]))
    return {name: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]
            for name, v in draws.items()}


def sample_metrics(frame: pd.DataFrame, kind: str = "tta", *, ece_bins: int = 15) -> dict:
    """Accuracy, ECE, NLL, AURC and E-AURC of the mean over test-time samples (``<kind>_prob_*``:
    ``tta`` views or ``mc`` dropout draws)."""
    y_true, _, names = read_predictions(frame)
    mean = frame[[f"{kind}_prob_{n}" for n in names]].to_numpy(dtype=np.float64)
    return {"accuracy": float((mean.argmax(1) == y_true).mean()),
            "ece": expected_calibration_error(y_true, mean, ece_bins), "nll": trust.nll(y_true, mean),
            "aurc": trust.aurc(y_true, mean), "e_aurc": trust.e_aurc(y_true, mean),
            "mean_uncertainty": float(frame[f"{kind}_uncertainty"].mean())}
