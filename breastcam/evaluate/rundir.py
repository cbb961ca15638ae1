"""Reading a finished run directory: its config, its split rows, its model, its predictions.

The run-directory contract is in docs/ARCHITECTURE.md (written by :mod:`breastcam.train`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from breastcam.errors import DataError, MissingFileError
from breastcam.evaluate.predict import predictions_frame


def suffix(split: str) -> str:
    """File-name suffix of a split's outputs: none for ``test``, ``_val`` for ``val``."""
    return "" if split == "test" else f"_{split}"


def read_run_config(run_dir: str | Path) -> dict:
    """The run's ``config.yaml`` as a dict (a clear error when the directory is not a run)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise MissingFileError(
            f"{path} not found: {run_dir} is not a run directory (train one with `breastcam train`)"
        )
    with open(path) as fh:
        cfg = yaml.safe_load(fh) or {}
    if not isinstance(cfg, dict):
        raise DataError(f"{path} must be a YAML mapping")
    return cfg


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_rows(path: str | Path) -> pd.DataFrame:
    from breastcam.data.manifest import read_manifest

    return read_manifest(path)


def split_rows(run_dir: str | Path, cfg: dict, split: str = "test") -> pd.DataFrame:
    """The manifest rows of ``split``: from the run's ``split.csv``, else from its manifest.

    The training engine's ``split.csv`` may hold only the rows it trained on (train/val); the
    test rows then come from ``data.manifest`` (with the run's fold applied, if any).
    """
    run_dir = Path(run_dir)
    data = cfg.get("data") or {}
    looked = []
    own = run_dir / "split.csv"
    if own.is_file():
        df = _read_rows(own)
        if "split" in df and (df["split"] == split).any():
            return df[df["split"] == split].reset_index(drop=True)
        looked.append(str(own))
    manifest = data.get("manifest")
    if manifest and Path(manifest).is_file():
        df = _read_rows(manifest)
        if data.get("fold") is not None:
            from breastcam.data.splits import fold_view

            df = fold_view(df, int(data["fold"]))
        if "split" in df and (df["split"] == split).any():
            return df[df["split"] == split].reset_index(drop=True)
        looked.append(str(manifest))
    elif manifest:
        looked.append(f"{manifest} (not found; relative paths are read from the current folder)")
    raise DataError(
        f"no '{split}' rows for run {run_dir}: looked in {', '.join(looked) or 'nothing'}; "
        "check data.manifest in its config.yaml"
    )


def _class_names(run_dir: Path, cfg: dict, rows: pd.DataFrame) -> list[str]:
    names = (cfg.get("data") or {}).get("class_names") or read_json(run_dir / "run_info.json").get("class_names")
    if names:
        return [str(n) for n in names]
    pairs = rows[["label_index", "label"]].drop_duplicates().sort_values("label_index")
    return pairs["label"].astype(str).tolist()


def _preprocessing(run_dir: Path, cfg: dict) -> str:
    name = (cfg.get("data") or {}).get("preprocessing") or read_json(run_dir / "run_info.json").get("preprocessing")
    if name:
        return str(name)
    from breastcam import models

    return models.spec((cfg.get("model") or {})["name"]).preprocessing


def predict_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    model_file: str = "best.keras",
    data_root: str | Path | None = None,
    batch_size: int | None = None,
) -> tuple[pd.DataFrame, Any]:
    """Predict ``split`` of a run: ``(predictions table, model)``."""
    from breastcam.data.pipeline import make_dataset
    from breastcam.data.preflight import preflight
    from breastcam.evaluate.predict import predict_dataset

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    data, train = cfg.get("data") or {}, cfg.get("train") or {}
    rows = split_rows(run_dir, cfg, split)
    class_names = _class_names(run_dir, cfg, rows)
    root = data_root if data_root is not None else (data.get("root") or ".")
    rows, bad = preflight(rows, root, on_bad_image=data.get("on_bad_image") or "raise",
                          where=f"run {run_dir} ({split} rows)")
    if bad:
        pd.DataFrame(bad, columns=["path", "reason"]).to_csv(
            run_dir / f"skipped_images{suffix(split)}.csv", index=False)
        rows = rows.reset_index(drop=True)
    stain = None
    if data.get("stain"):
        from breastcam.train.inputs import make_stain  # the same normaliser training used

        stain = make_stain(data["stain"])
    image_size = data.get("image_size") or 224
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    dataset = make_dataset(
        rows, root, image_size=tuple(image_size), preprocessing=_preprocessing(run_dir, cfg),
        batch_size=int(batch_size or train.get("batch_size") or 32), shuffle=False, stain=stain,
        label_mode="sparse", num_classes=len(class_names),
    )
    from breastcam.models import load_model

    model_path = run_dir / model_file
    if not model_path.is_file():
        raise FileNotFoundError(f"model file {model_path} not found (did training finish?)")
    model = load_model(model_path)
    model.run_eagerly = bool(train.get("run_eagerly"))  # as trained: no graph tracing (quick runs)
    y_prob, y_true = predict_dataset(model, dataset)
    if not np.array_equal(y_true, rows["label_index"].to_numpy()):
        raise DataError("the dataset's labels are not in manifest order; predictions would be misaligned")
    return predictions_frame(rows, y_prob, class_names), model
