"""Run configuration: a nested dict read from YAML, completed with defaults and checked.

A config is data, not code: every choice a paper's protocol makes (input size, preprocessing,
optimizer, epochs, ...) is a key here, and the three protocols ship as YAML files under
``experiments/``. ``load_config(path, overrides)`` accepts command-line overrides such as
``train.epochs=5`` or ``model.options.attention_stage=3`` (values parsed as YAML).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "output_dir": "runs/run",
    "seed": 0,
    "data": {
        "manifest": None,  # CSV with path,label,label_index[,patient_id] and a split column
        "root": None,  # dataset root the manifest's paths are relative to
        "fold": None,  # ERNet protocol: which fold is validation (int 0-4)
        "class_names": None,  # default: from the manifest (ordered by label_index)
        "image_size": 224,
        "preprocessing": None,  # default: the model's own (breastcam.models.spec(name))
        "cache": "memory",  # None, "memory" or a file prefix
        "stain": None,  # None or {method: macenko, reference: PATH (.json fit or an image)}
        "augmentation": "none",  # none | dala | ernet (modres is an offline manifest step)
        "on_bad_image": "raise",  # raise | skip (skipped files are listed in the run dir)
    },
    "model": {"name": "resnet50", "weights": None, "options": {}},
    "train": {
        "batch_size": 32,
        "epochs": 50,
        "optimizer": {"name": "adam", "learning_rate": 1.0e-4},
        "loss": "categorical_crossentropy",
        "class_weight": "none",  # none | balanced
        "bn_momentum": None,  # override BatchNormalization momentum (short runs from scratch)
        "monitor": "val_accuracy",
        "early_stopping": None,  # None or {patience: N, ...EarlyStopping kwargs}
        "tensorboard": False,
        "deterministic": True,  # seed everything + tf op determinism
        "mixed_precision": False,  # false | true (float16 on GPU, bfloat16 on CPU) | a policy name
        "sync_batchnorm": "auto",  # auto (on when >1 replica) | true | false: global-batch BN statistics
        "jit_compile": False,
        "distribute": "auto",  # auto | none | mirrored | multiworker (batch_size is the global batch)
    },
}

_LOSSES = {"categorical_crossentropy", "binary_crossentropy", "sparse_categorical_crossentropy"}
_OPTIMIZERS = {"adam", "sgd", "adamw", "rmsprop"}


def _merge(base: dict, update: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(config: dict, overrides: Iterable[str]) -> dict:
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a config copy."""
    out = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value, e.g. train.epochs=5")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = out
        for key in keys[:-1]:
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                raise ValueError(f"override {item!r}: {key!r} is not a section")
            node = node[key]
        node[keys[-1]] = yaml.safe_load(raw)
    return out


def resolve_config(config: Mapping) -> dict:
    """Fill defaults and check values; raise ``ValueError`` naming the bad key."""
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown config section(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = _merge(DEFAULTS, config)
    data, train, model = cfg["data"], cfg["train"], cfg["model"]
    if not data.get("manifest"):
        raise ValueError("config data.manifest is required: a split CSV made by `breastcam split`")
    if isinstance(data["image_size"], int):
        data["image_size"] = [data["image_size"], data["image_size"]]
    data["image_size"] = [int(v) for v in data["image_size"]]
    if train["loss"] not in _LOSSES:
        raise ValueError(f"train.loss={train['loss']!r}; choose one of {sorted(_LOSSES)}")
    opt = train["optimizer"]
    if isinstance(opt, str):
        train["optimizer"] = opt = {"name": opt}
    if opt.get("name", "adam").lower() not in _OPTIMIZERS:
        raise ValueError(f"train.optimizer.name={opt.get('name')!r}; choose one of {sorted(_OPTIMIZERS)}")
    if train["class_weight"] not in ("none", "balanced", None):
        raise ValueError(f"train.class_weight={train['class_weight']!r}; choose none or balanced")
    for key in ("batch_size", "epochs"):
        if not isinstance(train[key], int) or train[key] < 1:
            raise ValueError(f"train.{key} must be a positive integer, got {train[key]!r}")
    if data["on_bad_image"] not in ("raise", "skip"):
        raise ValueError(f"data.on_bad_image={data['on_bad_image']!r}; choose raise or skip")
    if not model.get("name"):
        raise ValueError("config model.name is required (see `breastcam models`)")
    model["options"] = dict(model.get("options") or {})
    return cfg


def load_config(path: str | Path | Mapping, overrides: Iterable[str] = ()) -> dict:
    """Read a YAML run config (or take a mapping), apply overrides, fill defaults, check.

    Relative ``data.manifest``/``data.root`` paths in a file are resolved against the current
    working directory, as a user typing the command expects.
    """
    if isinstance(path, Mapping):
        raw = dict(path)
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"run config {path} not found")
        with open(path) as fh:
            raw = yaml.safe_load(fh) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"run config {path} must be a YAML mapping, got {type(raw).__name__}")
    return resolve_config(apply_overrides(raw, overrides))


def dump_config(config: Mapping, path: str | Path) -> None:
    """Write a resolved config as YAML (the run directory's ``config.yaml``)."""
    with open(path, "w") as fh:
        yaml.safe_dump(_plain(config), fh, sort_keys=False)


def _plain(obj: Any) -> Any:
    # YAML-safe copy: tuples -> lists, Paths -> str.
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
