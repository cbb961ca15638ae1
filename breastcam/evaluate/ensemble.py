"""Deep ensembles (Lakshminarayanan et al. 2017) of runs that predicted the same test images.

The runs of one experiment row that differ only by seed share their test set: their served
probabilities are averaged image by image. The ensemble's predictive entropy splits into the
members' mean entropy (aleatoric: what every member finds ambiguous) and the mutual information
between the prediction and the member (epistemic: where the members disagree). Folds with
different test sets cannot be ensembled; :func:`ensemble_frame` says so.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from breastcam.errors import DataError
from breastcam.evaluate import trust
from breastcam.evaluate.calibration import brier_score, expected_calibration_error
from breastcam.evaluate.predict import PROB_PREFIX, read_predictions

MIN_MEMBERS = 2


def ensemble_frame(frames: Sequence[pd.DataFrame], names: Sequence[str] = ()) -> pd.DataFrame:
    """The ensemble's predictions table: ``path``, ``truth_index``, ``prob_*`` (the mean),
    ``prediction_index``, ``correct``, ``uncertainty`` (entropy of the mean), ``aleatoric``,
    ``epistemic`` (mutual information) and ``members``.

    Raises :class:`~breastcam.errors.DataError` when there are fewer than two members or they
    did not predict the same images (``names`` label the members in the message).
    """
    names = list(names) or [f"member {i}" for i in range(len(frames))]
    if len(frames) < MIN_MEMBERS:
        raise DataError(f"an ensemble needs at least {MIN_MEMBERS} runs, got {len(frames)}")
    first = frames[0]
    for name, frame in zip(names[1:], frames[1:]):
        if len(frame) != len(first) or not (frame["path"].to_numpy() == first["path"].to_numpy()).all():
            raise DataError(f"{name} predicted other test images than {names[0]} (different folds "
                            "or splits): their predictions cannot be averaged image by image")
    parts = [read_predictions(f) for f in frames]
    y_true, _, classes = parts[0]
    if any(p[2] != classes for p in parts[1:]):
        raise DataError(f"the runs have different classes: {[p[2] for p in parts]}")
    probs = np.stack([p[1] for p in parts])  # [M, N, K]
    mean = probs.mean(axis=0)
    total = trust.entropy(mean)
    aleatoric = np.mean([trust.entropy(p) for p in probs], axis=0)
    out = pd.DataFrame({"path": first["path"].to_numpy(), "truth_index": y_true})
    for i, c in enumerate(classes):
        out[f"{PROB_PREFIX}{c}"] = mean[:, i]
    out["prediction_index"] = mean.argmax(axis=1)
    out["correct"] = (out["prediction_index"].to_numpy() == y_true).astype(int)
    out["uncertainty"] = total
    out["aleatoric"] = aleatoric
    out["epistemic"] = np.maximum(total - aleatoric, 0.0)  # >= 0 by Jensen; clip rounding
    out["members"] = len(frames)
    return out


def ensemble_metrics(frame: pd.DataFrame, members: Sequence[pd.DataFrame], *, ece_bins: int = 15,
                     n_bootstrap: int = 200, seed: int = 0) -> dict:
    """The ensemble's accuracy, ECE, NLL, Brier, AURC, E-AURC and mean epistemic uncertainty (with
    percentile bootstrap intervals over the test images), beside the members' mean of each."""
    y_true, mean, _ = read_predictions(frame)
    measures = {
        "accuracy": lambda y, p: float((p.argmax(1) == y).mean()),
        "ece": lambda y, p: expected_calibration_error(y, p, ece_bins),
        "nll": trust.nll,
        "brier": brier_score,
        "aurc": trust.aurc,
        "e_aurc": trust.e_aurc,
    }
    out: dict = {name: fn(y_true, mean) for name, fn in measures.items()}
    out["epistemic"] = float(frame["epistemic"].mean())
    out["aleatoric"] = float(frame["aleatoric"].mean())
    out["members"] = int(frame["members"].iloc[0])
    member_parts = [read_predictions(m)[1] for m in members]
    out["members_mean"] = {name: float(np.mean([fn(y_true, p) for p in member_parts]))
                           for name, fn in measures.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(int(n_bootstrap)):
        idx = rng.integers(0, len(y_true), len(y_true))
        for name, fn in measures.items():
            draws[name].append(fn(y_true[idx], mean[idx]))
    if n_bootstrap:
        out["ci"] = {name: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]
                     for name, v in draws.items()}
    return out
