"""The ``tf.data`` input pipeline: manifest rows -> batches of preprocessed images and labels.

Order of operations (docs/ARCHITECTURE.md): read + decode -> uint8 RGB -> resize -> ``stain``
-> cache -> shuffle -> batch -> ``augment`` -> preprocessing -> prefetch. Everything up to the
cache is deterministic per image, so a cached epoch replays exactly what the first computed;
everything random (shuffle, augmentation) comes after it.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from breastcam.errors import DataError, MissingFileError
from breastcam.data.decode import SUPPORTED_EXTENSIONS, BadImageError, decode_as, read_image, sniff_route
from breastcam.data.preprocess import get_preprocessor

ImageFn = Callable[[tf.Tensor], tf.Tensor]

LABEL_MODES = ("sparse", "categorical", None)
_LABEL_ALIASES = {"one_hot": "categorical", "onehot": "categorical"}
_LIST_LIMIT = 20  # how many offending files an error message spells out


def image_paths(df: pd.DataFrame, root: str | os.PathLike | None) -> list[str]:
    """The file of every row of ``df``: ``df["path"]`` joined to ``root`` unless absolute."""
    if "path" not in df.columns:
        raise DataError(f"the manifest has no 'path' column (columns: {', '.join(df.columns)})")
    base = Path(root) if root is not None else Path()
    return [str(p) if Path(p).is_absolute() else str(base / p) for p in df["path"].astype(str)]


def find_bad_images(
    df: pd.DataFrame, root: str | os.PathLike | None, *, workers: int | None = None
) -> list[tuple[str, str]]:
    """``(path, reason)`` for every row whose file cannot be read, ``path`` as in the manifest.

    A full decode of every file with :func:`read_image` (missing files included), in threads:
    the decoders release the GIL. Slow for big datasets (about a minute per 10,000 BreakHis
    images per core); the training engine calls it once and records the result in its report.
    """

    def check(item: tuple[str, str]) -> tuple[str, str] | None:
        shown, full = item
        try:
            read_image(full)
        except BadImageError as err:
            return shown, err.reason
        return None

    items = list(zip(df["path"].astype(str), image_paths(df, root)))
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return [bad for bad in pool.map(check, items) if bad is not None]


def dataset_route(paths: list[str], *, workers: int | None = None) -> str:
    """The decoder route shared by every file (``png``, ``jpeg``), else ``general``.

    Read from each file's first 64 bytes once, when the dataset is built, so that a dataset of
    one format (they all are: BreakHis PNG, BACH TIFF, MIAS PGM, DDSM JPEG) decodes without a
    per-image branch on the bytes (``breastcam.data.decode.decode_as``).
    """
    with ThreadPoolExecutor(max_workers=workers or min(16, os.cpu_count() or 1)) as pool:
        routes = set(pool.map(sniff_route, dict.fromkeys(paths)))
    return routes.pop() if len(routes) == 1 else "general"


def resize_image(image: tf.Tensor, image_size: Sequence[int]) -> tf.Tensor:
    """Resize a uint8 [H, W, 3] (or batched) image to ``image_size`` = (height, width), as uint8.

    Bilinear with antialiasing, so that shrinking a 700x460 BreakHis image to 224 averages
    pixels instead of skipping them; rounded back to uint8 to keep the cache four times smaller.
    """
    return tf.cast(resize_rounded(image, image_size), tf.uint8)


def resize_rounded(image: tf.Tensor, image_size: Sequence[int]) -> tf.Tensor:
    """:func:`resize_image`'s values as float32 (whole grey levels in [0, 255]): the uncached
    path feeds them on without the uint8 round trip (the same numbers, two casts fewer)."""
    resized = tf.image.resize(image, image_size, method="bilinear", antialias=True)
    return tf.round(tf.clip_by_value(resized, 0.0, 255.0))


def make_dataset(
    df: pd.DataFrame,
    root: str | os.PathLike | None,
    *,
    image_size: Sequence[int] = (224, 224),
    preprocessing: str = "minus_one_one",
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    augment: ImageFn | None = None,
    stain: ImageFn | None = None,
    cache: str | os.PathLike | None = None,
    label_mode: str | None = "sparse",
    num_classes: int | None = None,
    on_bad_image: str = "raise",
    drop_remainder: bool = False,
    epoch_seeds: Sequence[int] | None = None,
    augment_factory: Callable[[int], ImageFn | None] | None = None,
    output_dtype: str = "float32",
) -> tf.data.Dataset:
    """Batches ``(images, labels)`` for the rows of a manifest.

    Images are float32 [B, H, W, 3] after ``get_preprocessor(preprocessing)``; labels come from
    ``df["label_index"]``: int32 [B] for ``label_mode="sparse"``, float32 one-hot [B, C] for
    ``"categorical"`` (or ``"one_hot"``, ``"onehot"``); ``label_mode=None`` yields images only
    (prediction). ``num_classes`` defaults to ``len(df.attrs["classes"])`` when the manifest
    carries its class list, else ``max(label_index) + 1``.

    ``stain`` maps one uint8 [H, W, 3] image to uint8 (e.g. a fitted ``Macenko``) and runs
    before the cache; ``augment`` maps a float32 batch in [0, 255] to the same and runs after
    it (training only: the caller decides). ``cache`` is ``None``, ``"memory"`` or a file prefix
    for ``tf.data``'s file cache, which holds resized (and stain-normalised) uint8 images: it
    must be rebuilt (deleted) when the rows, ``image_size`` or ``stain`` change, and a first
    epoch that stops early leaves no usable cache.

    ``shuffle`` reshuffles every epoch; the sequence of epoch orders of a new dataset is fixed
    by ``seed`` together with TensorFlow's global seed at construction (tf.data mixes it into
    every shuffle seed): set it first (``keras.utils.set_random_seed``) to replay orders.
    Without a cache the rows are shuffled before decoding (same result, no image buffer); with
    one, the shuffle buffer holds the whole cached set.

    ``epoch_seeds`` (training that must resume exactly): the dataset is several epochs back to
    back, epoch k shuffled with ``epoch_seeds[k]`` alone and augmented by
    ``augment_factory(epoch_seeds[k])`` (or ``augment``), so epoch k's batches do not depend on
    the epochs before it. Iterate it once with ``steps_per_epoch``; the cache is shared by all
    epochs. Augmentation runs sequentially (its random state advances per batch, in order).

    ``output_dtype="uint8"`` yields the resized images as uint8 batches, unpreprocessed (give
    ``preprocessing="none"`` and no ``augment``): for ``data.augment_on: device``, where the
    training step casts, augments and preprocesses on the accelerator.

    Without a cache or ``augment``, decode, resize, cast and preprocessing run in one parallel
    ``map`` (the shape of a plain ``tf.data`` pipeline: one map, then ``batch``): an uncached
    epoch costs what the same decode and resize cost there (benchmarks/pipeline.py). Order is
    deterministic (``deterministic=True``; an unordered map would make shuffled epochs and
    prediction order depend on thread timing).

    Every file must exist: a ``FileNotFoundError`` lists the missing ones up front. A file that
    cannot be decoded raises, when the dataset is iterated, an error naming it
    (``on_bad_image="raise"``), or is left out with a warning (``"skip"``: every file is
    decoded once up front; :func:`find_bad_images` gives the same list for a report).
    """
    # === Arguments ===
    if len(df) == 0:
        raise DataError("the manifest has no rows: nothing to build a dataset from")
    height, width = _check_size(image_size)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    label_mode = _LABEL_ALIASES.get(label_mode, label_mode)
    if label_mode not in LABEL_MODES:
        raise DataError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    if on_bad_image not in ("raise", "skip"):
        raise DataError(f"on_bad_image must be 'raise' or 'skip', got {on_bad_image!r}")
    preprocess = get_preprocessor(preprocessing)
    if output_dtype not in ("float32", "uint8"):
        raise DataError(f"output_dtype must be 'float32' or 'uint8', got {output_dtype!r}")
    raw = output_dtype == "uint8"
    if raw and (preprocessing != "none" or augment is not None or augment_factory is not None):
        raise DataError(
            "output_dtype='uint8' yields unpreprocessed images: give preprocessing='none' and no "
            "augment (the training step augments and preprocesses them: data.augment_on: device)"
        )

    # === Files ===
    paths = image_paths(df, root)
    _check_files(paths, root)
    keep = np.ones(len(df), bool)
    if on_bad_image == "skip":
        bad = find_bad_images(df, root)
        if bad:
            warnings.warn(
                f"make_dataset: skipping {len(bad)} unreadable image(s): "
                + _listing([f"{p} ({reason})" for p, reason in bad])
                + "; find_bad_images(df, root) returns this list for a report",
                stacklevel=2,
            )
            bad_paths = {p for p, _ in bad}
            keep = ~df["path"].astype(str).isin(bad_paths).to_numpy()
            if not keep.any():
                raise DataError("make_dataset: every image of the manifest is unreadable")
    paths = [p for p, k in zip(paths, keep) if k]

    # === Labels ===
    labels = None
    if label_mode is not None:
        labels, depth = _labels(df, num_classes)
        labels = labels[keep]

    # === Per image: decode, resize, stain, cache ===
    columns = (paths,) if labels is None else (paths, labels)
    rows = tf.data.Dataset.from_tensor_slices(columns)
    route = dataset_route(paths)

    def load(path, *label, as_float: bool = False):
        if as_float and stain is None:  # straight on to cast + preprocess: skip the uint8 trip
            return (resize_rounded(decode_as(path, route), (height, width)), *label)
        image = resize_image(decode_as(path, route), (height, width))
        if stain is not None:
            image = _check_uint8(stain(image), "stain")
        return (image, *label)

    def decoded(ds: tf.data.Dataset) -> tf.data.Dataset:
        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    # === Per batch: augment, preprocess ===
    def batched(ds: tf.data.Dataset, aug: ImageFn | None, *, load_first: bool = False
                ) -> tf.data.Dataset:
        def finish(images, *label):
            if not raw:
                images = tf.cast(images, tf.float32)
                if aug is not None:
                    images = aug(images)
                images = preprocess(images)
            if label_mode == "categorical":
                label = (tf.one_hot(label[0], depth, dtype=tf.float32),)
            return images if not label else (images, *label)

        if aug is None:
            # Per image, then batch: the float copies stay in the CPU cache. On cached epochs
            # this is about 4x faster than the same ops on a whole batch (benchmarks/pipeline.py).
            # Uncached (load_first): the decode is in the same map, one parallel stage.
            fn = (lambda *row: finish(*load(*row, as_float=not raw))) if load_first else finish
            ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            return ds.batch(batch_size, drop_remainder=drop_remainder)
        if load_first:
            ds = decoded(ds)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        # Augmenters draw from a seeded state that advances per call: keep calls in order.
        return ds.map(finish)

    n = len(paths)
    if epoch_seeds is not None:
        seeds = [int(v) for v in epoch_seeds]
        if not seeds:
            raise DataError("epoch_seeds is empty: give one seed per epoch to produce")
        images = decoded(rows).cache(_cache_target(cache)) if cache else None
        epochs = []
        for s in seeds:
            order = (images if cache else rows).shuffle(n, seed=s, reshuffle_each_iteration=False)
            aug = augment_factory(s) if augment_factory is not None else augment
            epochs.append(batched(order, aug, load_first=not cache))
        ds = epochs[0]
        for more in epochs[1:]:
            ds = ds.concatenate(more)
        return ds.prefetch(tf.data.AUTOTUNE)

    ds = rows
    if shuffle and not cache:
        ds = ds.shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
    if cache:
        ds = decoded(ds).cache(_cache_target(cache))
        if shuffle:
            ds = ds.shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
    return batched(ds, augment, load_first=not cache).prefetch(tf.data.AUTOTUNE)


# --- helpers -----------------------------------------------------------------------------


def _check_size(image_size) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DataError(f"image_size must be (height, width), got {image_size!r}") from None
    if height < 1 or width < 1:
        raise DataError(f"image_size must be positive, got {image_size!r}")
    return height, width


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    more = len(items) - _LIST_LIMIT
    return shown + (f" ... and {more} more" if more > 0 else "")


def _check_files(paths: list[str], root) -> None:
    """Fail before building on missing files (all listed) or unsupported extensions."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise MissingFileError(
            f"{len(missing)} of {len(paths)} image files of the manifest do not exist "
            f"(root {str(root)!r}): {_listing(missing)}. Check the dataset root, or run "
            "`breastcam validate` to check the manifest against the files."
        )
    unsupported = [p for p in paths if Path(p).suffix.lower() not in SUPPORTED_EXTENSIONS]
    if unsupported:
        raise BadImageError(
            unsupported[0],
            f"unsupported extension {Path(unsupported[0]).suffix!r} ({len(unsupported)} such "
            f"file(s): {_listing(unsupported)}); supported: {', '.join(SUPPORTED_EXTENSIONS)}",
        )


def _labels(df: pd.DataFrame, num_classes: int | None) -> tuple[np.ndarray, int]:
    if "label_index" not in df.columns:
        raise DataError(
            "the manifest has no 'label_index' column; pass label_mode=None for images only"
        )
    labels = df["label_index"].to_numpy()
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"label_index must hold integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int32)
    declared = df.attrs.get("classes")
    depth = num_classes or (len(declared) if declared else int(labels.max()) + 1)
    out_of_range = labels[(labels < 0) | (labels >= depth)]
    if out_of_range.size:
        raise DataError(
            f"label_index values {sorted(set(out_of_range.tolist()))[:10]} are outside "
            f"[0, {depth}) for num_classes={depth}"
        )
    return labels, depth


def _cache_target(cache) -> str:
    if cache == "memory":
        return ""
    target = Path(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    return str(target)


def _check_uint8(image: tf.Tensor, what: str) -> tf.Tensor:
    if image.dtype != tf.uint8:
        raise TypeError(f"{what} must return a uint8 image, got {image.dtype.name}")
    return image
