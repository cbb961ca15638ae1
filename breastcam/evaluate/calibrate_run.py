"""``breastcam calibrate RUN``: fit the run's temperature (or vector scaling) and conformal threshold, and keep them in
the run (``calibration.json``), where evaluate, explain, export, predict and the model card find
them through :class:`breastcam.runs.TrainedModel`.

The validation split is cut in two seeded, stratified halves: the temperature is fitted on one
(NLL), the conformal threshold on the other, with the temperature applied — so the threshold's
coverage guarantee is not spent on the data the temperature saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from breastcam.errors import DataError, UsageError
from breastcam.evaluate import trust
from breastcam.evaluate.calibration import brier_score, expected_calibration_error
from breastcam.evaluate.predict import read_predictions
from breastcam.evaluate.rundir import predict_run
from breastcam.runs import Run, files

MIN_IMAGES = 8  # validation images below which calibration is refused (4 per half: a smoke test at best)


def calibrate_run(run_dir: str | Path, *, alpha: float = 0.1, score: str = "lac", seed: int = 0,
                  method: str = "temperature", data_root: str | Path | None = None,
                  batch_size: int | None = None) -> dict:
    """Fit and save the calibration of a run; returns what ``calibration.json`` holds.

    ``method``: ``temperature`` (one scalar) or ``vector`` (a scale and a bias per class, on
    log-probabilities; more parameters, so it needs more validation images to pay off).
    """
    if not 0.0 < float(alpha) < 1.0:
        raise UsageError(f"--alpha {alpha!r} must be in (0, 1): 0.1 asks for sets that hold the true "
                         "class at least 90 % of the time")
    if score not in trust.SCORES:
        raise UsageError(f"--score {score!r}; choose one of {', '.join(trust.SCORES)}")
    if method not in trust.CALIBRATION_METHODS:
        raise UsageError(f"--method {method!r}; choose one of {', '.join(trust.CALIBRATION_METHODS)}")
    run = Run.open(run_dir)
    try:
        frame, _ = predict_run(run.dir, split="val", data_root=data_root, batch_size=batch_size,
                               calibrated=False)
    except DataError as err:
        raise DataError(f"cannot calibrate run {run.dir}: it has no validation images to fit on ({err}). "
                        "Calibration needs held-out images the model was not trained on: give the run "
                        "a split with val rows (breastcam split)") from None
    y_true, y_prob, names = read_predictions(frame)
    if len(y_true) < MIN_IMAGES:
        raise DataError(f"cannot calibrate run {run.dir}: {len(y_true)} validation images, fewer than "
                        f"{MIN_IMAGES} (half fits the temperature, half the conformal threshold)")
    first, second = _halves(y_true, seed)
    fitted: dict = {"method": method, "temperature": None}
    if method == "vector":
        fitted["vector"] = trust.fit_vector_scaling(y_true[first], y_prob[first])
        fitted["vector"]["on"] = "log-probabilities (the network serves softmax), not logits"
    else:
        fitted["temperature"] = trust.fit_temperature(y_true[first], y_prob[first])
    calibrated = trust.apply_calibration(y_prob, fitted)
    threshold = trust.conformal_threshold(y_true[second], calibrated[second], alpha, score)
    sets = trust.prediction_sets(calibrated[second], threshold, score)
    out = {
        **fitted,
        "conformal": {"alpha": float(alpha), "score": score, "threshold": threshold},
        "fitted_on": {"split": "val", "images": int(len(y_true)), "temperature_images": int(len(first)),
                      "conformal_images": int(len(second)), "seed": int(seed), "classes": names},
        "validation": {
            "nll_before": trust.nll(y_true[first], y_prob[first]),
            "nll_after": trust.nll(y_true[first], calibrated[first]),
            "ece_before": expected_calibration_error(y_true, y_prob),
            "ece_after": expected_calibration_error(y_true, calibrated),
            "brier_before": brier_score(y_true, y_prob),
            "brier_after": brier_score(y_true, calibrated),
            "coverage_conformal_half": float(sets[np.arange(len(second)), y_true[second]].mean()),
            "mean_set_size_conformal_half": float(sets.sum(axis=1).mean()),
        },
    }
    if threshold == float("inf"):
        out["note"] = (f"{len(second)} conformal images are too few for alpha {alpha}: every class is in "
                       f"every set (needs at least {int(np.ceil(1 / alpha)) - 1} images)")
        import warnings

        warnings.warn(f"breastcam calibrate: {out['note']}", stacklevel=2)
    run.path(files.CALIBRATION).write_text(json.dumps(out, indent=2))
    return out


def reset_calibration(run_dir: str | Path) -> bool:
    """Remove the run's calibration; returns whether there was one."""
    path = Run.open(run_dir).path(files.CALIBRATION)
    if path.is_file():
        path.unlink()
        return True
    return False


def _halves(y_true: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index sets, each holding about half of every class (seeded)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y_true))
    counts = np.bincount(y_true)
    stratify = y_true if (counts[counts > 0] >= 2).all() else None
    a, b = train_test_split(idx, test_size=0.5, random_state=seed, stratify=stratify)
    return np.sort(a), np.sort(b)
