"""Process-wide switches of a run: seeds and determinism, mixed precision, distribution.

These are global TensorFlow/Keras settings, so they are set once per run, before the model is
built, and recorded in the run directory by the caller.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from breastcam.errors import ConfigError


def set_determinism(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; with ``deterministic`` also make TF ops deterministic.

    Op determinism makes CPU and GPU kernels reproducible run to run (at some speed cost on GPU).
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
        try:
            tf.config.experimental.enable_op_determinism()
        except AttributeError:  # very old TF
            pass


def set_mixed_precision(enabled: bool) -> str:
    """Switch the global Keras dtype policy; returns the policy name now in force.

    ``mixed_float16`` pays off on GPUs with tensor cores; on CPU it is slower, so it is opt-in.
    """
    policy = "mixed_float16" if enabled else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def make_strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """A distribution strategy: ``auto`` mirrors over all GPUs when more than one is visible.

    ``multiworker`` needs ``TF_CONFIG`` set on every worker (see TensorFlow's documentation of
    ``MultiWorkerMirroredStrategy``).
    """
    kind = (kind or "auto").lower()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "none" or (kind == "auto" and len(gpus) <= 1):
        return tf.distribute.get_strategy()
    if kind in ("auto", "mirrored"):
        return tf.distribute.MirroredStrategy()
    if kind == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("train.distribute=multiworker needs the TF_CONFIG environment variable on every worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"train.distribute={kind!r}; choose auto, none, mirrored or multiworker")
