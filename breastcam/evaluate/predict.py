"""Model + dataset -> probabilities -> the per-image predictions table (``predictions.csv``).

``predictions.csv`` columns, in this order: ``path``, ``truth``, ``truth_index``,
``prediction``, ``prediction_index``, ``correct`` (0/1), ``prob_<class>`` per class (in class
order), then the manifest's own columns that are not already there (``patient_id``,
``magnification`` ...), so results can be broken down per patient or magnification.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from breastcam.console import progress
from breastcam.errors import DataError

PROB_PREFIX = "prob_"


def predict_dataset(model: Any, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over a ``(images, labels)`` dataset in order: ``(y_prob [N, K], y_true [N])``.

    Labels may be sparse ints or one-hot; they come back as ints. The dataset must not be
    shuffled (row i of the result is row i of the manifest the dataset was built from).
    """
    probs, labels = [], []
    batches = int(dataset.cardinality()) if hasattr(dataset, "cardinality") else -1
    for images, y in progress(dataset, desc="predict", total=batches if batches > 0 else None,
                              unit="batch"):
        probs.append(np.asarray(model.predict_on_batch(images), dtype=np.float64))
        y = np.asarray(y)
        labels.append(np.argmax(y, axis=-1) if y.ndim == 2 else y.reshape(-1))
    if not probs:
        raise DataError("the dataset yielded no images to predict")
    y_prob = np.concatenate(probs, axis=0)
    if y_prob.ndim == 2 and y_prob.shape[1] == 1:  # a sigmoid head: P(positive)
        y_prob = np.concatenate([1.0 - y_prob, y_prob], axis=1)
    return y_prob, np.concatenate(labels).astype(np.int64)


def predictions_frame(
    rows: pd.DataFrame, y_prob: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """The ``predictions.csv`` table of the manifest ``rows`` (same order as ``y_prob``)."""
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if len(rows) != len(y_prob):
        raise DataError(
            f"{len(rows)} manifest rows but {len(y_prob)} predictions: the dataset dropped or "
            "added images (on_bad_image='skip'?)"
        )
    if y_prob.shape[1] != len(class_names):
        raise DataError(
            f"the model outputs {y_prob.shape[1]} classes but the run has {len(class_names)} "
            f"({list(class_names)})"
        )
    names = [str(c) for c in class_names]
    truth = rows["label_index"].to_numpy(dtype=np.int64)
    pred = np.argmax(y_prob, axis=1)
    out = pd.DataFrame(
        {
            "path": rows["path"].astype(str).to_numpy(),
            "truth": [names[i] for i in truth],
            "truth_index": truth,
            "prediction": [names[i] for i in pred],
            "prediction_index": pred,
            "correct": (pred == truth).astype(int),
        }
    )
    for i, name in enumerate(names):
        out[f"{PROB_PREFIX}{name}"] = y_prob[:, i]
    skip = {"path", "label", "label_index", "split"} | set(out.columns)
    for col in rows.columns:
        if col not in skip:
            out[col] = rows[col].to_numpy()
    return out


def read_predictions(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(y_true, y_prob, class_names)`` back from a predictions table."""
    prob_cols = [c for c in frame.columns if c.startswith(PROB_PREFIX)]
    if not prob_cols or "truth_index" not in frame:
        raise DataError("not a breastcam predictions table: needs truth_index and prob_* columns")
    names = [c[len(PROB_PREFIX):] for c in prob_cols]
    return (
        frame["truth_index"].to_numpy(dtype=np.int64),
        frame[prob_cols].to_numpy(dtype=np.float64),
        names,
    )
