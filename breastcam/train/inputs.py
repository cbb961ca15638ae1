"""The tf.data inputs of a run: train (shuffled per epoch, augmented) and validation.

Kept apart from ``run.py`` so that the same inputs can be rebuilt for a benchmark or a
notebook without training.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
import pandas as pd
import tensorflow as tf

from breastcam.errors import ConfigError
from breastcam.augment import get_recipe
from breastcam.data.pipeline import make_dataset
from breastcam.data.preflight import preflight
from breastcam.stain.config import stain_from_config
from breastcam.train.callbacks import epoch_seed


@dataclasses.dataclass
class TrainingInputs:
    train: tf.data.Dataset
    val: tf.data.Dataset
    rows: pd.DataFrame  # the manifest rows used, with their split
    steps_per_epoch: int
    skipped: list[tuple[str, str]]  # (path, reason) of bad images left out (on_bad_image=skip)


def class_names_of(df: pd.DataFrame) -> list[str]:
    """Class names ordered by ``label_index`` (the manifest's own order)."""
    pairs = df[["label_index", "label"]].drop_duplicates().sort_values("label_index")
    if pairs["label_index"].duplicated().any():
        raise ConfigError("manifest maps one label_index to several labels; fix the manifest")
    names = pairs["label"].astype(str).tolist()
    if pairs["label_index"].tolist() != list(range(len(names))):
        raise ConfigError(
            f"manifest label_index values {pairs['label_index'].tolist()} are not 0..{len(names) - 1}; "
            "every class must occur (check the filters used to make the manifest)"
        )
    return names


def make_stain(stain_cfg: dict | None):
    """A fitted normaliser from ``data.stain`` (see :func:`breastcam.stain.config.stain_from_config`)."""
    return stain_from_config(stain_cfg)


def training_inputs(
    df: pd.DataFrame,
    cfg: dict,
    *,
    class_names: list[str],
    preprocessing: str,
    first_epoch: int = 0,
    run_dir: Path | None = None,
    stain=None,
) -> TrainingInputs:
    """Build the train and validation datasets of a resolved run config.

    The training dataset holds epochs ``first_epoch .. epochs-1`` back to back, epoch k shuffled
    and augmented from ``epoch_seed(seed, k)`` alone: a run resumed at epoch k sees exactly the
    batches an uninterrupted run saw. Fit it with ``steps_per_epoch=inputs.steps_per_epoch``.
    ``stain`` is the run's fitted normaliser (default: fitted from ``data.stain`` here).
    """
    data, train = cfg["data"], cfg["train"]
    root = data.get("root") or "."
    rows = df[df["split"].isin(["train", "val"])].copy()
    # Every file is checked before the first step: all bad files reported at once, or skipped.
    rows, skipped = preflight(rows, root, on_bad_image=data["on_bad_image"],
                              where=f"manifest {data['manifest']} (train and val rows)")
    if skipped and run_dir is not None:
        pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(
            Path(run_dir) / "skipped_images.csv", index=False
        )
    for split in ("train", "val"):
        if not (rows["split"] == split).any():
            raise ConfigError(f"manifest {data['manifest']} has no '{split}' rows")

    label_mode = "sparse" if train["loss"].startswith("sparse") else "categorical"
    # augment_on: device - raw uint8 batches; the training step augments and preprocesses them
    # (breastcam.train.device_augment).
    on_device = data.get("augment_on", "host") == "device"
    common = dict(
        image_size=tuple(data["image_size"]),
        preprocessing="none" if on_device else preprocessing,
        output_dtype="uint8" if on_device else "float32",
        batch_size=train["batch_size"],
        stain=stain if stain is not None else make_stain(data.get("stain")),
        label_mode=label_mode,
        num_classes=len(class_names),
    )
    recipe = data.get("augmentation") or "none"

    def augment_factory(seed: int):
        return get_recipe(recipe, seed=seed, image_size=tuple(data["image_size"]))

    cache = data.get("cache")
    train_rows = rows[rows["split"] == "train"]
    train_ds = make_dataset(
        train_rows, root, shuffle=True, augment_factory=None if on_device else augment_factory,
        epoch_seeds=[epoch_seed(cfg["seed"], e) for e in range(first_epoch, max(train["epochs"], first_epoch + 1))],
        cache=f"{cache}_train" if cache not in (None, "memory") else cache, **common,
    )
    val_ds = make_dataset(
        rows[rows["split"] == "val"], root, shuffle=False,
        cache=f"{cache}_val" if cache not in (None, "memory") else cache, **common,
    )
    steps = math.ceil(len(train_rows) / train["batch_size"])
    return TrainingInputs(train_ds, val_ds, rows, steps, skipped)
