"""One training run: a config in, a run directory out, always through ``model.fit`` on tf.data.

The run directory is the unit everything downstream reads (``breastcam evaluate``, reports,
export). Starting the same command again after an interruption resumes the run from its last
finished epoch (``BackupAndRestore``) and ends with the same result as an uninterrupted run:
every random source is reseeded from ``(seed, epoch)`` at each epoch start.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import keras
import tensorflow as tf
import numpy as np
import pandas as pd
import yaml

from breastcam.errors import ConfigError, DataError, OutputExistsError
from breastcam import models
from breastcam.data.decode import set_max_image_pixels
from breastcam.data.manifest import read_manifest
from breastcam.data.splits import fold_view
from breastcam.console import progress_enabled
from breastcam.train.callbacks import (
    EpochProgress,
    BackupLast,
    EpochSeeder,
    ResumableCheckpoint,
    Timing,
    truncate_history,
)
from breastcam.train.config import dump_config, load_config
from breastcam.train.device_augment import device_augmented
from breastcam.runs import files, resolve_preprocessing
from breastcam.stain.config import stain_from_config
from breastcam.train.inputs import class_names_of, training_inputs
from breastcam.train.runtime import is_chief, make_strategy, set_determinism, set_mixed_precision

BACKUP_DIR = files.BACKUP


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
    data, train, mcfg = cfg["data"], cfg["train"], cfg["model"]
    # The strategy first: MultiWorkerMirroredStrategy must exist before other TensorFlow work.
    strategy = make_strategy(train["distribute"])
    out = Path(cfg["output_dir"])
    # Only the chief writes the run directory; other workers of a multi-worker run keep their
    # own backup/logs in a scratch folder inside it (needed to resume in step with the chief).
    work = out if is_chief(strategy) else out / f".worker-{strategy.cluster_resolver.task_id}"
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output_dir {out} is an existing file, not a folder: choose another "
                                "output_dir (a new or an existing run folder)")
    work.mkdir(parents=True, exist_ok=True)
    if work == out:
        _claim_run_dir(out, cfg)
    if (out / files.STATUS).exists() and json.loads((out / files.STATUS).read_text()).get("state") == "finished":
        return out

    set_max_image_pixels(data["max_image_pixels"])
    set_determinism(cfg["seed"], train["deterministic"])
    policy = set_mixed_precision(train["mixed_precision"])

    df = read_manifest(data["manifest"])
    if data.get("fold") is not None:
        df = fold_view(df, int(data["fold"]))
    if "split" not in df:
        raise ConfigError(
            f"manifest {data['manifest']} has no 'split' column; make one with `breastcam split`"
        )
    unknown = sorted(set(df["split"].astype(str)) - {"train", "val", "test"})
    if unknown:  # a misspelt split would silently drop its images from training
        rows = df.index[~df["split"].astype(str).isin(["train", "val", "test"])][:5]
        raise DataError(
            f"manifest {data['manifest']}: split value(s) {unknown} are not train, val or test "
            f"(line(s) {[int(i) + 2 for i in rows]}); fix them, or `breastcam validate` lists every problem"
        )
    class_names = data.get("class_names") or class_names_of(df)
    preprocessing = resolve_preprocessing(mcfg["name"], data)
    _write_json(work / files.INFO, {
        "class_names": class_names, "preprocessing": preprocessing, "precision": policy,
        "replicas": int(strategy.num_replicas_in_sync),
    })

    backup = work / BACKUP_DIR
    first_epoch = _backed_up_epochs(backup)
    # The fitted normaliser is part of the run: evaluation, export and prediction read it back.
    stain = stain_from_config(data.get("stain"))
    if stain is not None:
        stain.save(work / files.STAIN)
    inputs = training_inputs(df, cfg, class_names=class_names, preprocessing=preprocessing,
                             first_epoch=first_epoch, run_dir=work, stain=stain)
    inputs.rows.to_csv(work / files.SPLIT, index=False, lineterminator="\n")
    if inputs.skipped:  # on_bad_image: skip - the record of what was left out
        info = json.loads((work / files.INFO).read_text())
        info["skipped_images"] = [{"path": p, "reason": r} for p, r in inputs.skipped]
        _write_json(work / files.INFO, info)

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
        sync = train.get("sync_batchnorm", "auto")
        if sync is True or (sync == "auto" and strategy.num_replicas_in_sync > 1):
            set_bn_synchronized(model, True)
        # data.augment_on: device - fit a wrapper that augments and preprocesses in the step;
        # checkpoints and the files below hold the plain model (breastcam.train.device_augment).
        trainer = model
        if data.get("augment_on", "host") == "device":
            trainer = device_augmented(model, data.get("augmentation"), seed=int(cfg["seed"]),
                                       preprocessing=preprocessing)
        trainer.compile(
            optimizer=make_optimizer(train["optimizer"]),
            loss=train["loss"],
            metrics=[_accuracy(train["loss"])],
            jit_compile=bool(train["jit_compile"]),
            run_eagerly=bool(train["run_eagerly"]),
        )

    info = json.loads((work / files.INFO).read_text())
    info["jit_compile"] = bool(trainer.jit_compile)  # Keras turns XLA off under op determinism
    info["augment_on"] = data.get("augment_on", "host")
    _write_json(work / files.INFO, info)
    if train["jit_compile"] and not trainer.jit_compile:
        warnings.warn(
            "train.jit_compile=true has no effect: Keras disables XLA while TensorFlow op "
            "determinism is on (train.deterministic=true) or when a layer does not support it "
            "(e.g. RandomRotation with data.augment_on=device); set train.deterministic=false, "
            "or data.augment_on=host, to train with XLA (run_info.json records jit_compile)",
            stacklevel=2,
        )
    truncate_history(work / files.HISTORY, first_epoch)
    backup_callback = BackupLast(str(backup))
    all_callbacks = [
        # BackupAndRestore first: it sets the start epoch the others read on train begin;
        # its epoch-end backup is taken last (backup_callback.last, below).
        backup_callback,
        EpochSeeder(cfg["seed"]),
        ResumableCheckpoint(work / files.BEST, work / files.HISTORY, monitor=train["monitor"]),
        keras.callbacks.CSVLogger(str(work / files.HISTORY), append=True),
        Timing(work / files.TIMING, monitor=train["monitor"]),
        keras.callbacks.TerminateOnNaN(),
    ]
    if train.get("early_stopping"):
        es = dict(train["early_stopping"])
        es.setdefault("monitor", train["monitor"])
        all_callbacks.append(keras.callbacks.EarlyStopping(**es))
    if train.get("tensorboard"):
        all_callbacks.append(keras.callbacks.TensorBoard(str(work / "tensorboard")))
    if verbose == 0 and progress_enabled():
        all_callbacks.append(EpochProgress(train["epochs"], first_epoch, desc=cfg["name"]))
    all_callbacks.extend(callbacks)
    all_callbacks.append(backup_callback.last)

    with strategy.scope():  # a no-op on one device; under multi-worker, fit reads the strategy from it
        if train["distribute"] == "multiworker":
            _prepare_multiworker_fit(trainer, inputs.train)
        trainer.fit(
            inputs.train,
            validation_data=inputs.val,
            steps_per_epoch=inputs.steps_per_epoch,
            shuffle=False,  # the dataset shuffles each epoch itself (seeded)
            epochs=train["epochs"],
            callbacks=all_callbacks,
            class_weight=_class_weight(train["class_weight"], inputs.rows, class_names),
            verbose=verbose,
        )
    # The last epoch's weights only (the best checkpoint is the model to use; a full .keras with
    # the optimiser state would triple the disk cost of every run).
    model.save_weights(work / files.LAST_WEIGHTS)
    if not (work / files.BEST).exists():  # e.g. monitor missing from logs: keep the last model
        model.save(work / files.BEST)
    if work != out:  # a finished non-chief worker keeps nothing
        shutil.rmtree(work, ignore_errors=True)
        return out
    _write_json(out / files.STATUS, {"state": "finished", "epochs": train["epochs"]})
    return out


def _prepare_multiworker_fit(model: keras.Model, train_ds) -> None:
    """Build the model's metrics/optimizer from one local batch before a multi-worker ``fit``.

    Keras 3's ``fit`` first reduces one *distributed* batch across workers to build the model
    symbolically, and that reduction fails under ``MultiWorkerMirroredStrategy``
    (keras-team/keras#20585, open at Keras 3.15; the two private attributes touched here are
    pinned by tests/train/test_train_distributed.py, which fails loudly if Keras changes them). Building from a local batch, then letting
    ``fit`` take the strategy from the enclosing scope instead of from the model, skips that
    step; everything else in ``fit`` (dataset distribution, all-reduced gradients, metrics) is
    Keras' own multi-worker path.
    """
    images, labels = next(iter(train_ds.take(1)))
    model._symbolic_build(data_batch=(images, labels, None))
    model._distribute_strategy = None
    # Keras' multi-worker reduction of the step's logs is a mean over axis 0, which fails on the
    # scalar metric results; give each a length-1 axis (every replica holds the same all-reduced
    # value, so the mean over replicas is that value). Not saved with the model.
    model.train_step = _logs_as_vectors(model.train_step)
    model.test_step = _logs_as_vectors(model.test_step)


def _logs_as_vectors(step):
    def step_with_vector_logs(data):
        return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    return step_with_vector_logs


def set_bn_momentum(model: keras.Model, momentum: float) -> int:
    """Set every BatchNormalization layer's momentum; returns how many layers changed.

    With Keras' default 0.99, moving statistics need hundreds of steps to leave their
    initial values: a short run from scratch (the demo, ``--quick``) would evaluate with
    untrained statistics and predict one class. Saved with the model (it is layer config).
    """
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"train.bn_momentum must be in [0, 1), got {momentum!r}")
    count = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            count += 1
    return count


def set_bn_synchronized(model: keras.Model, synchronized: bool = True) -> int:
    """Make every BatchNormalization layer use global-batch statistics across replicas.

    Without it each of N replicas normalises with the statistics of its own batch_size / N
    images, so a mirrored or multi-worker run trains a different function from the one-device
    run with the same global batch (and small per-replica batches give noisy statistics).
    Keras' ``synchronized`` flag all-reduces the moments (TensorFlow backend). Returns the count.
    """
    count = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = bool(synchronized)
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
    import inspect

    from breastcam.errors import ConfigError
    from breastcam.schema import unknown_key_message

    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    for key in spec:
        if key not in valid:  # Keras would fail later with a bare TypeError
            raise ConfigError(unknown_key_message(f"train.optimizer.{key}", list(dict.fromkeys([*valid, "name"]))))
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


# What a run writes before its first epoch, and what shows that training began.
_SET_UP = (files.INFO, files.SPLIT, files.STAIN, "skipped_images.csv")
_TRAINED = (files.HISTORY, files.BEST, files.LAST_WEIGHTS, files.STATUS, files.TIMING, files.BACKUP, "tensorboard")


def _claim_run_dir(out: Path, cfg: dict) -> None:
    """Write config.yaml, or check that the directory holds this same run (to resume it).

    A folder whose run stopped before training began (a config or data error: a model option,
    a bad file) holds nothing to keep: a corrected config takes it over, its set-up files
    removed. A run that trained is never replaced.
    """
    path = out / files.CONFIG
    if path.exists():
        with open(path) as fh:
            existing = yaml.safe_load(fh)
        tmp = out / ".config.new.yaml"
        dump_config(cfg, tmp)
        with open(tmp) as fh:
            new = yaml.safe_load(fh)
        tmp.unlink()
        if existing == new:
            return
        trained = [name for name in _TRAINED if (out / name).exists()]
        if trained:
            raise OutputExistsError(
                f"{out} already holds a run with a different config ({path}; it trained: "
                f"{', '.join(trained)}); choose another output_dir, or delete the directory to start over"
            )
        for name in _SET_UP:
            (out / name).unlink(missing_ok=True)
    dump_config(cfg, path)


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2))
