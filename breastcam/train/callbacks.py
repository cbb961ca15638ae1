"""Callbacks that make a run timed, resumable and reproducible.

Keras' own callbacks do most of the work (``ModelCheckpoint``, ``CSVLogger``,
``BackupAndRestore``, ``TerminateOnNaN``); these fill three gaps:

* ``Timing`` records seconds per epoch, the time to the best epoch ("convergence time" in the
  papers' Tables 7 / IX / X) and the total, and survives a resume.
* ``EpochSeeder`` reseeds the model's random generators at the start of each epoch from
  ``(seed, epoch)``. ``BackupAndRestore`` restores weights and optimiser state but not
  random-generator state, so without it a resumed run would drop out differently from an
  uninterrupted one (the input pipeline seeds shuffling and augmentation per epoch itself).
* ``ResumableCheckpoint`` is ``ModelCheckpoint(save_best_only=True)`` whose best value is
  recovered from ``history.csv`` after a resume, so a worse epoch never overwrites the best.
* ``BackupLast`` takes ``BackupAndRestore``'s epoch-end backup after every other callback has
  written its epoch (see the class).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Iterable

import keras
import numpy as np
import pandas as pd


def epoch_seed(seed: int, epoch: int) -> int:
    """A 31-bit seed for ``epoch`` of a run seeded with ``seed`` (same inputs, same output)."""
    return int((seed * 1_000_003 + epoch * 7919 + 17) % (2**31 - 1))


def seed_generators(objects: Iterable[object]) -> list:
    """Every Keras ``SeedGenerator`` reachable from the given models/layers."""
    found, seen = [], set()
    for obj in objects:
        if obj is None:
            continue
        layers = [obj] + list(obj._flatten_layers()) if hasattr(obj, "_flatten_layers") else [obj]
        for layer in layers:
            for sg in getattr(layer, "_seed_generators", []) or []:
                if id(sg) not in seen:
                    seen.add(id(sg))
                    found.append(sg)
    return found


class EpochSeeder(keras.callbacks.Callback):
    """Reseeds the model's seed generators (dropout, ...) from ``(seed, epoch)`` at each epoch.

    The input pipeline seeds each epoch's shuffle and augmentation itself
    (``make_dataset(epoch_seeds=...)``); this covers the randomness inside the model.
    """

    def __init__(self, seed: int, extra: Iterable[object] = ()):
        super().__init__()
        self.seed = int(seed)
        self.extra = list(extra)

    def on_epoch_begin(self, epoch, logs=None):
        base = epoch_seed(self.seed, epoch)
        for i, sg in enumerate(seed_generators([self.model, *self.extra])):
            state = sg.state
            value = np.zeros(state.shape, dtype=state.dtype.name if hasattr(state.dtype, "name") else state.dtype)
            value.flat[0] = base + 104_729 * i
            state.assign(value)
        keras.utils.set_random_seed(base)


class Timing(keras.callbacks.Callback):
    """Wall seconds per epoch, to the best epoch, and in total; written to ``timing.json``."""

    def __init__(self, path: str | Path, monitor: str = "val_accuracy", mode: str = "auto"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.mode = _mode(monitor, mode)
        self.epoch_seconds: list[float] = []
        self.values: list[float] = []
        self._start = 0.0

    def on_train_begin(self, logs=None):
        # On resume keep the finished epochs' times (BackupAndRestore has set the start epoch).
        initial = int(getattr(self.model, "_initial_epoch", 0) or 0)
        if self.path.exists() and initial > 0:
            saved = json.loads(self.path.read_text())
            self.epoch_seconds = list(saved.get("epoch_seconds", []))[:initial]
            self.values = list(saved.get("monitor_values", []))[:initial]
        else:
            self.epoch_seconds, self.values = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._start)
        value = (logs or {}).get(self.monitor)
        self.values.append(float(value) if value is not None else float("nan"))
        self.path.write_text(json.dumps(self.summary(), indent=2))

    def summary(self) -> dict:
        values = np.array(self.values, dtype=float)
        if len(values) and not np.all(np.isnan(values)):
            best = int(np.nanargmax(values) if self.mode == "max" else np.nanargmin(values))
        else:
            best = len(values) - 1
        return {
            "epoch_seconds": self.epoch_seconds,
            "monitor": self.monitor,
            "monitor_values": self.values,
            "best_epoch": best,
            "seconds_to_best": float(sum(self.epoch_seconds[: best + 1])),
            "total_seconds": float(sum(self.epoch_seconds)),
        }


class ResumableCheckpoint(keras.callbacks.ModelCheckpoint):
    """Best-only checkpoint whose best value is recovered from the run's history after a resume."""

    def __init__(self, filepath: str | Path, history_csv: str | Path, monitor: str, mode: str = "auto"):
        super().__init__(str(filepath), monitor=monitor, mode=_mode(monitor, mode), save_best_only=True)
        self.history_csv = Path(history_csv)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        initial = int(getattr(self.model, "_initial_epoch", 0) or 0)
        if initial > 0 and self.history_csv.exists() and Path(self.filepath).exists():
            hist = pd.read_csv(self.history_csv)
            if self.monitor in hist:
                values = hist[self.monitor].iloc[:initial].dropna()
                if len(values):
                    self.best = float(values.max() if self.mode == "max" else values.min())


class BackupLast(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose epoch-end backup is taken by :attr:`last`, the list's last entry.

    Keras calls callbacks in list order. ``BackupAndRestore`` must come first (its
    ``on_train_begin`` sets the start epoch the others read), but its backup must come last: a
    backup taken before ``CSVLogger``, the checkpoint and ``Timing`` have written the epoch tells a
    run killed in between that the epoch is done while its history row and checkpoint are
    missing. Backed up last, such a kill only makes the resumed run redo the epoch.
    """

    def __init__(self, backup_dir: str, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.last = _EpochBackup(self)

    def on_epoch_end(self, epoch, logs=None):
        pass  # taken by self.last


class _EpochBackup(keras.callbacks.Callback):
    def __init__(self, owner: BackupLast):
        super().__init__()
        self.owner = owner

    def on_epoch_end(self, epoch, logs=None):
        keras.callbacks.BackupAndRestore.on_epoch_end(self.owner, epoch, logs)


def truncate_history(history_csv: str | Path, epochs_done: int) -> None:
    """Drop rows of epochs that a resume will redo (killed after logging, before backing up)."""
    path = Path(history_csv)
    if not path.exists():
        return
    try:
        hist = pd.read_csv(path)
    except pd.errors.EmptyDataError:  # CSVLogger opened it, the run died before epoch 1 ended
        return
    if "epoch" in hist and len(hist) > epochs_done:
        hist[hist["epoch"] < epochs_done].to_csv(path, index=False)


def _mode(monitor: str, mode: str) -> str:
    if mode != "auto":
        return mode
    return "min" if ("loss" in monitor or "error" in monitor) else "max"


def nan_safe(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


class EpochProgress(keras.callbacks.Callback):
    """A tqdm bar over epochs (stderr), for runs trained with ``verbose=0`` such as those of
    ``breastcam reproduce``; the CLI's ``--quiet`` leaves it out."""

    def __init__(self, epochs: int, first_epoch: int = 0, desc: str = "epochs"):
        super().__init__()
        self.epochs, self.first_epoch, self.desc = int(epochs), int(first_epoch), desc
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.epochs, initial=self.first_epoch, desc=self.desc,
                        unit="epoch", disable=None, leave=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            logs = logs or {}
            shown = {k: f"{logs[k]:.4f}" for k in ("loss", "val_accuracy") if k in logs}
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
