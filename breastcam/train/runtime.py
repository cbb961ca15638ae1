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
        tf.config.experimental.enable_op_determinism()
    else:
        # Switched off explicitly: a later run in the same process (a notebook, a study) must not
        # inherit an earlier run's determinism, which also makes Keras drop jit_compile.
        from tensorflow.python.framework import config as tf_config  # not exported by tf.config

        tf_config.disable_op_determinism()


_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def precision_policy(setting: bool | str | None) -> str:
    """The Keras dtype policy a ``train.mixed_precision`` setting asks for.

    ``False``/``None``: ``float32``. ``True``: ``mixed_float16`` when a GPU is visible (tensor
    cores), else ``mixed_bfloat16`` (float16 has no fast CPU kernels; bfloat16 does on CPUs with
    AVX512-BF16/AMX and keeps float32's exponent range, so no loss scaling is needed).
    A policy name selects it directly.
    """
    if setting in (None, False):
        return "float32"
    if setting is True:
        return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"
    name = str(setting)
    if name not in _POLICIES:
        raise ConfigError(
            f"train.mixed_precision={setting!r}; use true, false or one of {', '.join(_POLICIES)}"
        )
    return name


def set_mixed_precision(setting: bool | str | None) -> str:
    """Switch the global Keras dtype policy; returns the policy name now in force.

    Models end in a float32 softmax whatever the policy (``breastcam.models.heads``), so the
    probabilities and the CAM maps stay float32.
    """
    policy = precision_policy(setting)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def make_strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy for ``train.distribute``.

    - ``auto``: mirror over all GPUs when more than one is visible, else the default strategy;
    - ``none``: the default (one device);
    - ``mirrored``: ``MirroredStrategy`` over every GPU, or - on a machine without GPUs - over
      every logical CPU device (so the synchronous all-reduce path can be exercised and tested
      on CPU, see ``tf.config.set_logical_device_configuration``);
    - ``multiworker``: ``MultiWorkerMirroredStrategy``; every worker needs ``TF_CONFIG``
      (README, "Multi-worker training").
    The batch size of a run is the global batch: each of N replicas sees batch_size / N.
    """
    kind = (kind or "auto").lower()
    if kind == "multiworker":  # before anything lists devices: that would start the runtime
        if "TF_CONFIG" not in os.environ:
            raise ConfigError(
                "train.distribute=multiworker needs the TF_CONFIG environment variable on every "
                "worker (cluster addresses and this worker's index); see README, Multi-worker training"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "none" or (kind == "auto" and len(gpus) <= 1):
        return tf.distribute.get_strategy()
    if kind in ("auto", "mirrored"):
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    raise ConfigError(f"train.distribute={kind!r}; choose auto, none, mirrored or multiworker")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes a run's files (the only worker outside multi-worker runs).

    Under ``MultiWorkerMirroredStrategy`` every worker trains, but only the chief (task 0 of the
    ``worker`` or ``chief`` job) writes checkpoints, logs and status; the others write to a
    scratch directory that is deleted afterwards.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0
                                            and "chief" not in resolver.cluster_spec().as_dict())
