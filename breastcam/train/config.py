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

from breastcam.errors import ConfigError, MissingFileError, UsageError
from breastcam.schema import check_mapping, check_path, schema_from_defaults

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
        "augment_on": "host",  # host (tf.data map, CPU) | device (Keras layers in the training step)
        "on_bad_image": "raise",  # raise | skip (skipped files are listed in the run dir)
        "max_image_pixels": 100_000_000,  # larger images are refused before decoding (decompression bombs)
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
        "run_eagerly": False,  # Keras eager fit: no graph tracing (quick smoke tests of big models on CPU)
        "distribute": "auto",  # auto | none | mirrored | multiworker (batch_size is the global batch)
    },
}

_STAIN = {"method": (str,), "reference": (type(None), str)}
# Kinds of the keys whose default does not tell (None defaults, unions); every other key's type
# is its default's (breastcam.schema).
_TYPES: dict[str, tuple] = {
    "data.manifest": (type(None), str),
    "data.root": (type(None), str),
    "data.fold": (type(None), int),
    "data.class_names": (type(None), list),
    "data.image_size": (int, list),
    "data.preprocessing": (type(None), str),
    "data.cache": (type(None), str),
    "data.stain": (type(None), _STAIN),
    "model.weights": (type(None), str),
    "train.class_weight": (type(None), str),
    "train.bn_momentum": (type(None), float, int),
    "train.early_stopping": (type(None), {"*": (object,)}),
    "train.mixed_precision": (bool, type(None), str),  # true/false or a Keras policy name
    "train.sync_batchnorm": (bool, str),  # true/false or "auto"
}
# Sections with keys of their own beyond the defaults' (passed to Keras as keyword arguments).
SCHEMA: dict = schema_from_defaults(DEFAULTS, _TYPES, open_sections=("train.optimizer",))
SCHEMA["train"][0]["optimizer"] = (str, *SCHEMA["train"][0]["optimizer"])  # "adam" = {name: adam}

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
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a config copy.

    Every dotted key is looked up in the schema first: ``train.epoch=5`` fails naming
    ``train.epochs`` instead of adding a key nothing reads.
    """
    out = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"override {item!r} must look like section.key=value, e.g. train.epochs=5")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        check_path(dotted.strip(), SCHEMA, source=f"--set {item}")
        node = out
        for key in keys[:-1]:
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                raise ConfigError(f"override {item!r}: {key!r} is not a section")
            node = node[key]
        node[keys[-1]] = yaml.safe_load(raw)
    return out


def resolve_config(config: Mapping, source: str = "") -> dict:
    """Fill defaults and check keys (at every depth), types and values; raise
    :class:`ConfigError` naming ``source`` (the file), the bad key and the value."""
    check_mapping(config, SCHEMA, source)
    where = f"{source}: " if source else ""
    cfg = _merge(DEFAULTS, config)
    data, train, model = cfg["data"], cfg["train"], cfg["model"]
    if not data.get("manifest"):
        raise ConfigError(where + "config data.manifest is required: a split CSV made by `breastcam split`")
    if isinstance(data["image_size"], int):
        data["image_size"] = [data["image_size"], data["image_size"]]
    data["image_size"] = [int(v) for v in data["image_size"]]
    if train["loss"] not in _LOSSES:
        raise ConfigError(where + f"train.loss={train['loss']!r}; choose one of {sorted(_LOSSES)}")
    opt = train["optimizer"]
    if isinstance(opt, str):
        train["optimizer"] = opt = {"name": opt}
    if opt.get("name", "adam").lower() not in _OPTIMIZERS:
        raise ConfigError(where + f"train.optimizer.name={opt.get('name')!r}; choose one of {sorted(_OPTIMIZERS)}")
    if train["class_weight"] not in ("none", "balanced", None):
        raise ConfigError(where + f"train.class_weight={train['class_weight']!r}; choose none or balanced")
    for key in ("batch_size", "epochs"):
        if not isinstance(train[key], int) or train[key] < 1:
            raise ConfigError(where + f"train.{key} must be a positive integer, got {train[key]!r}")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise ConfigError(where + f"seed must be an integer from 0 to {2 ** 32 - 1} (NumPy's range), got {seed!r}")
    if data["on_bad_image"] not in ("raise", "skip"):
        raise ConfigError(where + f"data.on_bad_image={data['on_bad_image']!r}; choose raise or skip")
    if data["augment_on"] not in ("host", "device"):
        raise ConfigError(where + f"data.augment_on={data['augment_on']!r}; choose host (a tf.data "
                          "map on the CPU) or device (Keras layers inside the training step)")
    if not model.get("name"):
        raise ConfigError(where + "config model.name is required (see `breastcam models`)")
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
            raise MissingFileError(f"run config {path} not found")
        try:
            with open(path) as fh:
                raw = yaml.safe_load(fh) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"run config {path} is not valid YAML ({err})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"run config {path} must be a YAML mapping, got {type(raw).__name__}")
    source = "" if isinstance(path, Mapping) else f"run config {path}"
    return resolve_config(apply_overrides(raw, overrides), source)


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
