"""A study's compute cost, estimated before any training: GFLOPs x images x epochs.

Per run: the model's analytic forward GFLOPs at the run's input size
(:func:`breastcam.models.summary.count_flops`, what ``breastcam models`` prints) x
``(3 x training images + validation images) x epochs + test images``. The 3 is the usual rule
for training (a forward and a backward pass, the backward about twice the forward). It is an
estimate: data loading, augmentation, stain normalisation and early stopping are not in it, and
transformer GFLOPs are lower bounds (see ``count_flops``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

TRAIN_FACTOR = 3.0


def _split_sizes(manifest: str, fold: int | None) -> tuple[dict[str, int], int]:
    """Images per split (of ``fold``) and the number of classes of a run's manifest."""
    from breastcam.data.manifest import read_manifest
    from breastcam.data.splits import fold_view

    df = read_manifest(manifest)
    classes = int(df["label_index"].max()) + 1
    if fold is not None:
        df = fold_view(df, int(fold))
    return {k: int(v) for k, v in df["split"].value_counts().items()}, classes


def _gflops(name: str, classes: int, size: tuple[int, int], options: dict) -> float:
    import keras

    from breastcam import models
    from breastcam.models.summary import count_flops

    model = models.build(name, classes, input_shape=(*size, 3), weights=None, **options)
    value = count_flops(model)
    keras.backend.clear_session()
    return value


def estimate(study: dict) -> pd.DataFrame:
    """One row per planned run: ``id, model, gflops, train, val, test, epochs, tflop``."""
    from breastcam.train.config import load_config

    sizes: dict[tuple[str, int | None], tuple[dict[str, int], int]] = {}
    flops: dict[str, float] = {}
    rows = []
    for entry in study["runs"]:
        cfg = load_config(entry["config"])
        data, model = cfg["data"], cfg["model"]
        key = (data["manifest"], data.get("fold"))
        if key not in sizes:
            sizes[key] = _split_sizes(*key)
        n, classes = sizes[key]
        classes = len(data.get("class_names") or []) or classes
        size = tuple(data["image_size"])
        model_key = json.dumps([model["name"], classes, size, model["options"]], sort_keys=True)
        if model_key not in flops:
            flops[model_key] = _gflops(model["name"], classes, size, dict(model["options"]))
        epochs = int(cfg["train"]["epochs"])
        images = ((TRAIN_FACTOR * n.get("train", 0) + n.get("val", 0)) * epochs + n.get("test", 0))
        rows.append({"id": entry["id"], "model": Path(entry["id"]).parts[1],
                     "gflops": flops[model_key], "train": n.get("train", 0),
                     "val": n.get("val", 0), "test": n.get("test", 0), "epochs": epochs,
                     "tflop": flops[model_key] * images / 1e3})
    return pd.DataFrame(rows, columns=["id", "model", "gflops", "train", "val", "test", "epochs",
                                       "tflop"])

