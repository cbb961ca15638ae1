"""One training run: a config in, a run directory out, always through ``model.fit`` on tf.data.

The run directory is the unit everything downstream reads (``breastcam evaluate``, reports,
export). Starting the same command again after an interruption resumes the run from its last
finished epoch (``BackupAndRestore``) and ends with the same result as an uninterrupted run:
every random source is reseeded from ``(seed, epoch)`` at each epoch start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import yaml

from breastcam import models
from breastcam.data.manifest import read_manifest
from breastcam.data.splits import fold_view
from breastcam.train.callbacks import (
    BackupLast,
    EpochSeeder,
    ResumableCheckpoint,
    Timing,
    truncate_history,
)
from breastcam.train.config import dump_config, load_config
from breastcam.train.inputs import class_names_of, training_inputs
from breastcam.train.runtime import make_strategy, set_determinism, set_mixed_precision

BACKUP_DIR = "backup"


def run(
    config: str | Path | Mapping,
    overrides: Sequence[str] = (),
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
) -> Path:
    """Train the run described by ``config``; return its run directory.

    ``config`` is a YAML path or a mapping (see :mod:`breastcam.train.config`). If the output
    directory already holds this run, training resumes where it stopped; a finished run is not
    trained again. ``callbacks`` are added after breastcam's own.
    """
    cfg = load_config(config, overrides)
    out = Path(cfg["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    _claim_run_dir(out, cfg)
    if (out / "status.json").exists() and json.loads((out / "status.json").read_text()).get("state") == "finished":
        return out

    data, train, mcfg = cfg["data"], cfg["train"], cfg["model"]
    set_determinism(cfg["seed"], train["deterministic"])
    set_mixed_precision(train["mixed_precision"])
    strategy = make_strategy(train["distribute"])

    df = read_manifest(data["manifest"])
    if data.get("fold") is not None:
        df = fold_view(df, int(data["fold"]))
    if "split" not in df:
        raise ValueError(
            f"manifest {data['manifest']} has no 'split' column; make one with `breastcam split`"
        )
    class_names = data.get("class_names") or class_names_of(df)
    spec = models.spec(mcfg["name"])
    preprocessing = data.get("preprocessing") or spec.preprocessing
    _write_json(out / "run_info.json", {"class_names": class_names, "preprocessing": preprocessing})

    backup = out / BACKUP_DIR
    first_epoch = _backed_up_epochs(backup)
    inputs = training_inputs(df, cfg, class_names=class_names, preprocessing=preprocessing,
                             first_epoch=first_epoch, run_dir=out)
    inputs.rows.to_csv(out / "split.csv", index=False, lineterminator="\n")

    with strategy.scope():
        model = models.build(
            mcfg["name"],
            num_classes=len(class_names),
            input_shape=(*data["image_size"], 3),
            weights=mcfg.get("weights"),
            **mcfg["options"],
        )
        if train.get("bn_momentum") is not None:
            set_bn_momentum(model, float(train["bn_momentum"]))
        model.compile(
            optimizer=make_optimizer(train["optimizer"]),
            loss=train["loss"],
            metrics=[_accuracy(train["loss"])],
            jit_compile=bool(train["jit_compile"]),
        )

    truncate_history(out / "history.csv", first_epoch)
    backup_callback = BackupLast(str(backup))
    all_callbacks = [
        # BackupAndRestore first: it sets the start epoch the others read on train begin;
        # its epoch-end backup is taken last (backup_callback.last, below).
        backup_callback,
        EpochSeeder(cfg["seed"]),
        ResumableCheckpoint(out / "best.keras", out / "history.csv", monitor=train["monitor"]),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        Timing(out / "timing.json", monitor=train["monitor"]),
        keras.callbacks.TerminateOnNaN(),
    ]
    if train.get("early_stopping"):
        es = dict(train["early_stopping"])
        es.setdefault("monitor", train["monitor"])
        all_callbacks.append(keras.callbacks.EarlyStopping(**es))
    if train.get("tensorboard"):
        all_callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard")))
    all_callbacks.extend(callbacks)
    all_callbacks.append(backup_callback.last)

    model.fit(
        inputs.train,
        validation_data=inputs.val,
        steps_per_epoch=inputs.steps_per_epoch,
        shuffle=False,  # the dataset shuffles each epoch itself (seeded)
        epochs=train["epochs"],
        callbacks=all_callbacks,
        class_weight=_class_weight(train["class_weight"], inputs.rows, class_names),
        verbose=verbose,
    )
    # The last epoch's weights only (best.keras is the model to use; a full .keras with the
    # optimiser state would triple the disk cost of every run).
    model.save_weights(out / "last.weights.h5")
    if not (out / "best.keras").exists():  # e.g. monitor missing from logs: keep the last model
        model.save(out / "best.keras")
    _write_json(out / "status.json", {"state": "finished", "epochs": train["epochs"]})
    return out


def set_bn_momentum(model: keras.Model, momentum: float) -> int:
    """Set every BatchNormalization layer's momentum; returns how many layers changed.

    With Keras' default 0.99, moving statistics need hundreds of steps to leave their
    initial values: a short run from scratch (the demo, ``--quick``) would evaluate with
    untrained statistics and predict one class. Saved with the model (it is layer config).
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"train.bn_momentum must be in [0, 1), got {momentum!r}")
    count = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            count += 1
    return count


def make_optimizer(spec: Mapping) -> keras.optimizers.Optimizer:
    """Adam (paper default), AdamW, SGD or RMSprop from ``{name, learning_rate, ...}``."""
    spec = dict(spec)
    name = spec.pop("name", "adam").lower()
    cls = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }[name]
    return cls(**spec)


def _accuracy(loss: str) -> keras.metrics.Metric:
    if loss.startswith("sparse"):
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    return keras.metrics.CategoricalAccuracy(name="accuracy")


def _class_weight(mode: str | None, rows: pd.DataFrame, class_names: list[str]) -> dict | None:
    if mode in (None, "none"):
        return None
    from sklearn.utils.class_weight import compute_class_weight

    y = rows.loc[rows["split"] == "train", "label_index"].to_numpy()
    classes = np.arange(len(class_names))
    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    out = {int(c): 1.0 for c in classes}
    out.update({int(c): float(w) for c, w in zip(present, weights)})
    return out


def _backed_up_epochs(backup: Path) -> int:
    meta = backup / "training_metadata.json"
    if meta.exists():
        return int(json.loads(meta.read_text()).get("epoch", 0))
    return 0


def _claim_run_dir(out: Path, cfg: dict) -> None:
    """Write config.yaml, or check that the directory holds this same run (to resume it)."""
    path = out / "config.yaml"
    if path.exists():
        with open(path) as fh:
            existing = yaml.safe_load(fh)
        tmp = out / ".config.new.yaml"
        dump_config(cfg, tmp)
        with open(tmp) as fh:
            new = yaml.safe_load(fh)
        tmp.unlink()
        if existing != new:
            raise FileExistsError(
                f"{out} already holds a run with a different config ({path}); choose another "
                "output_dir, or delete the directory to start over"
            )
        return
    dump_config(cfg, path)


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2))
