"""Predicting a finished run: its split rows through its :class:`~breastcam.runs.TrainedModel`.

The run itself (config, files, class names, preprocessing, stain) is read only through
:class:`breastcam.runs.Run`; this module adds the batched prediction of a split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from breastcam.errors import DataError
from breastcam.evaluate.predict import predictions_frame
from breastcam.evaluate.uncertainty import parse_uncertainty, sampler
from breastcam.runs import Run, files


def suffix(split: str) -> str:
    """File-name suffix of a split's outputs: none for ``test``, ``_val`` for ``val``."""
    return "" if split == "test" else f"_{split}"


def read_run_config(run_dir: str | Path) -> dict:
    """The run's ``config.yaml`` as a dict (a clear error when the directory is not a run)."""
    return Run.open(run_dir).config


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def split_rows(run_dir: str | Path, cfg: dict | None = None, split: str = "test") -> pd.DataFrame:
    """The manifest rows of ``split`` of a run (see :meth:`breastcam.runs.Run.rows`)."""
    run = Run.open(run_dir) if cfg is None else Run(Path(run_dir), cfg)
    return run.rows(split)


def predict_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    model_file: str = files.BEST,
    data_root: str | Path | None = None,
    batch_size: int | None = None,
    calibrated: bool = True,
    uncertainty: str | None = None,
) -> tuple[pd.DataFrame, Any]:
    """Predict ``split`` of a run: ``(predictions table, the run's TrainedModel)``.

    The probabilities are those the run serves: calibrated when ``breastcam calibrate`` fitted
    it, unless ``calibrated=False`` (the network's own, which calibration is fitted on).
    ``uncertainty="tta:K"`` adds the mean over K test-time views (``tta_prob_<class>``) and its
    entropy (``tta_uncertainty``) beside them; ``"mc:K"`` the mean over K dropout draws
    (``mc_prob_<class>``, ``mc_uncertainty``) (:mod:`breastcam.evaluate.uncertainty`).

    The files are decoded and resized by the tf.data pipeline (uint8, as in training); the
    run's :class:`~breastcam.runs.TrainedModel` applies its stain normaliser, preprocessing and
    network — the same object ``export`` writes and ``predict`` serves.
    """
    from breastcam.data.pipeline import make_dataset
    from breastcam.data.preflight import preflight
    from breastcam.evaluate.predict import predict_dataset

    from breastcam.data.decode import set_max_image_pixels

    run = Run.open(run_dir)
    if run.data.get("max_image_pixels"):
        set_max_image_pixels(run.data["max_image_pixels"])
    rows = run.rows(split)
    root = data_root if data_root is not None else run.data_root
    rows, bad = preflight(rows, root, on_bad_image=run.data.get("on_bad_image") or "raise",
                          where=f"run {run.dir} ({split} rows)")
    if bad:
        pd.DataFrame(bad, columns=["path", "reason"]).to_csv(
            run.dir / f"skipped_images{suffix(split)}.csv", index=False)
        rows = rows.reset_index(drop=True)
    trained = run.trained_model(model_file, calibrated=calibrated)
    dataset = make_dataset(
        rows, root, image_size=trained.image_size, preprocessing="none", output_dtype="uint8",
        batch_size=int(batch_size or run.batch_size), shuffle=False, label_mode="sparse",
        num_classes=len(trained.class_names),
    )
    kind, k = parse_uncertainty(uncertainty)
    samples = None
    if kind != "none":  # one pass per batch: K samples of every image beside its single prediction
        samples = sampler(kind, trained, k, run.data.get("augmentation"),
                          seed=int(run.config.get("seed") or 0))
        mean, y_true = predict_dataset(samples, dataset)
        y_prob = np.concatenate(samples.single, axis=0)
        y_raw = np.concatenate(samples.single_raw, axis=0)
    else:  # the network's own probabilities, then the run's calibration (what is served)
        y_raw, y_true = predict_dataset(trained.uncalibrated(), dataset)
        y_prob = np.asarray(trained.calibrate(y_raw), np.float64) if trained.calibration else y_raw
    if not np.array_equal(y_true, rows["label_index"].to_numpy()):
        raise DataError("the dataset's labels are not in manifest order; predictions would be misaligned")
    frame = predictions_frame(rows, y_prob, trained.class_names)
    if trained.calibration:
        frame.attrs["raw_prob"] = y_raw  # the uncalibrated probabilities: "before" measures
    if samples is not None:
        from breastcam.evaluate.trust import entropy

        for i, name in enumerate(trained.class_names):
            frame[f"{kind}_prob_{name}"] = mean[:, i]
        frame[f"{kind}_uncertainty"] = entropy(mean)
        frame.attrs[kind] = {"k": k, **({"recipe": samples.recipe} if samples.recipe else {})}
    return frame, trained
