"""Experiment definitions: ``experiments/<paper>/<experiment>.yaml``, one per published table.

An experiment says which published numbers it reproduces, on which data, with which models and
training protocol; ``breastcam.reproduce`` runs it and the report layer renders it. The schema is
documented in ``experiments/README.md``; :func:`load_experiment` checks it and fills defaults.
``experiments/protocols/`` holds run configs for ``breastcam train``, not experiments.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from breastcam.errors import ConfigError, MissingFileError
from breastcam.report.published import experiments_dir, load_published_files
from breastcam.schema import OPEN, check_mapping, check_value, unknown_key_message

REQUIRED_KEYS = ("name", "paper", "title", "published", "dataset", "protocols", "models", "train",
                 "evaluate")
OPTIONAL_KEYS = {
    "filters": {},  # keyword options of breastcam.data.load_manifest
    "subsets": None,  # {by: column, values: [...], mode: separate | pooled}
    "split": {},  # extra make_split options, e.g. {stratify: [label, magnification]}
    "published_datasets": None,  # datasets whose published rows count; default [dataset]
    "model_options": {},  # registry model -> build options
    "quick": {},  # overrides for a small, fast run
    "explain": {},  # CAM methods and their parameters
    "beside": [],  # experiments (breastcam's extensions) whose results this report shows too
}
PAPERS = ("A", "B", "C")
PROTOCOLS = ("dala", "ernet", "modres", "patient", "breakhis-official")  # the last: BreakHis authors' folds
SUBSET_MODES = ("separate", "pooled")
NOT_EXPERIMENT_DIRS = ("protocols",)  # run configs, not experiments
NOT_EXPERIMENT_FILES = ("deviations.yaml",)  # a paper's deviations (breastcam.report.deviations)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster

# An experiment's ``train`` keys and where they go in a run config (breastcam/train/config.py).
TRAIN_DATA_KEYS = ("image_size", "preprocessing", "augmentation", "augment_on", "cache", "on_bad_image")
TRAIN_TRAIN_KEYS = ("batch_size", "epochs", "optimizer", "loss", "monitor", "class_weight",
                    "early_stopping", "deterministic", "mixed_precision", "jit_compile",
                    "distribute", "run_eagerly")
TRAIN_PLAN_KEYS = ("folds", "seeds", "reuse", "weights", "stain")  # read by the planner itself


@functools.lru_cache(maxsize=1)
def experiment_schemas() -> dict:
    """``{section: schema}`` of the checked sections: ``train`` and ``quick`` take the run
    config's types (one schema, breastcam.schema); the other optional sections not listed here
    are free-form options. Built on first use: the run config module imports the training
    engine (TensorFlow), which listing experiments does not need."""
    from breastcam.train.config import SCHEMA as run_schema

    run_data, run_train = run_schema["data"][0], run_schema["train"][0]
    train = {
        **{k: run_data[k] for k in TRAIN_DATA_KEYS},
        **{k: run_train[k] for k in TRAIN_TRAIN_KEYS},
        "folds": (list,), "seeds": (list,), "reuse": (str,),
        "weights": run_schema["model"][0]["weights"], "stain": run_data["stain"],
    }
    return {
        "train": train,
        "quick": {**train, "models": (list,), "protocols": (list,), "max_images": (int,)},
        "subsets": {"by": (str,), "values": (list,), "mode": (str,)},
        "split": {"stratify": (list, str)},
        "evaluate": {"metrics": (list,), "num_classes": (dict,), "timing_from": (list,),
                     # the paper's protocol, shown in reports, not read by code
                     "iba": (dict,), "aggregate": (str,), "curves": (list,),
                     "confusion_matrices": (bool,),
                     # dala-params: model options per dataset (e.g. DALA's reduction ratio)
                     "options_by_dataset": (dict,)},
        "explain": {"methods": (list,), "params": (dict,), "max_images": (int,),
                    "split": (str,), "layer": (type(None), str),
                    "threshold": (str, float, int), "masks": (type(None), str),
                    "faithfulness": (list,), "grid": (OPEN,), "overlay": (OPEN,)},
    }


def _fail(source: str, key: str, problem: str) -> None:
    raise ConfigError(f"experiment {source}: {key}: {problem} (schema: experiments/README.md)")


def _normalise_models(raw: Any, model_options: Mapping, source: str) -> tuple[list[str], dict]:
    """``models`` entries are names or ``{name, model, options}``; returns names and their specs."""
    if not isinstance(raw, list):
        _fail(source, "models", f"must be a list, got {type(raw).__name__}")
    names, specs = [], {}
    for i, entry in enumerate(raw):
        if isinstance(entry, str):
            name, model, options = entry, entry, {}
        elif isinstance(entry, Mapping):
            extra = set(entry) - {"name", "model", "options"}
            if "name" not in entry or extra:
                _fail(source, f"models[{i}]", "a mapping needs 'name' and may have 'model' and "
                      f"'options' only, got keys {sorted(entry)}")
            name = str(entry["name"])
            model = str(entry.get("model", name))
            options = dict(entry.get("options") or {})
        else:
            _fail(source, f"models[{i}]", f"must be a model name or a mapping, got {entry!r}")
        if name in specs:
            _fail(source, "models", f"{name!r} is listed twice")
        merged = {**dict(model_options.get(model) or {}), **dict(model_options.get(name) or {}),
                  **options}
        names.append(name)
        specs[name] = {"model": model, "options": merged}
    return names, specs


def _check_sections(raw: Mapping, source: str) -> None:
    """Keys and types of ``train``, ``quick`` and the sections of :data:`SECTION_SCHEMAS`.

    A ``train`` value may be per model (a mapping with a ``default`` key): each of its values
    is checked against the key's type.
    """
    where = f"experiment {source}"
    for section, schema in experiment_schemas().items():
        block = raw.get(section)
        if not isinstance(block, Mapping):
            continue  # absent, or reported as "must be a mapping" below
        for key, value in block.items():
            if key in schema and isinstance(value, Mapping) and "default" in value \
                    and section in ("train", "quick"):
                for model, choice in value.items():
                    check_value(choice, schema[key], f"{section}.{key}.{model}", where)
            else:
                check_mapping({key: value}, schema, where, f"{section}.")


def validate_experiment(raw: Mapping, source: str = "<mapping>") -> dict:
    """Check an experiment mapping and return it completed with defaults.

    Adds ``model_specs`` (``{name: {model, options}}``: the registry model of every entry of
    ``models`` and its merged build options) and turns ``models`` into a list of names. Errors
    name ``source`` (the file) and the key at fault.
    """
    if not isinstance(raw, Mapping):
        _fail(source, "<top level>", f"must be a YAML mapping, got {type(raw).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        _fail(source, ", ".join(missing), "required key(s) missing")
    unknown = sorted(set(raw) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ConfigError(unknown_key_message(unknown[0], [*REQUIRED_KEYS, *OPTIONAL_KEYS],
                                              f"experiment {source}"))
    _check_sections(raw, source)
    exp = copy.deepcopy(dict(raw))
    for key, default in OPTIONAL_KEYS.items():
        if exp.get(key) is None:
            exp[key] = copy.deepcopy(default)

    for key in ("name", "title", "dataset"):
        if not isinstance(exp[key], str) or not exp[key].strip():
            _fail(source, key, f"must be a non-empty string, got {exp[key]!r}")
    if exp["paper"] not in PAPERS:
        _fail(source, "paper", f"must be one of {list(PAPERS)}, got {exp['paper']!r}")
    if not isinstance(exp["published"], list) or not all(isinstance(p, str) for p in exp["published"]):
        _fail(source, "published", "must be a list of CSV paths relative to experiments/")
    protocols = exp["protocols"]
    if not isinstance(protocols, list) or not protocols:
        _fail(source, "protocols", "must be a non-empty list, e.g. [dala, patient]")
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad:
        _fail(source, "protocols", f"unknown {bad}; choose from {list(PROTOCOLS)}")
    if protocols[0] == "patient":
        _fail(source, "protocols", "the first entry is the paper's protocol (dala, ernet or "
              "modres); 'patient' means that protocol grouped by patient")
    for key in ("train", "evaluate", "filters", "split", "model_options", "quick", "explain"):
        if not isinstance(exp[key], Mapping):
            _fail(source, key, f"must be a mapping, got {type(exp[key]).__name__}")
    metrics = exp["evaluate"].get("metrics")
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        _fail(source, "evaluate.metrics", "must be a list of metric names")
    subsets = exp["subsets"]
    if subsets is not None:
        if not isinstance(subsets, Mapping) or "by" not in subsets or not isinstance(
                subsets.get("values"), list) or not subsets["values"]:
            _fail(source, "subsets", "must be {by: column, values: [v1, ...]} or left out")
        subsets.setdefault("mode", "separate")
        if subsets["mode"] not in SUBSET_MODES:
            _fail(source, "subsets.mode", f"must be one of {list(SUBSET_MODES)}, got "
                  f"{subsets['mode']!r}")
    if exp["published_datasets"] is None:
        exp["published_datasets"] = [exp["dataset"]]
    if not isinstance(exp["beside"], list) or not all(isinstance(b, str) for b in exp["beside"]):
        _fail(source, "beside", "must be a list of experiment names, e.g. [modres-cddcesm-abnormal]")
    exp["models"], exp["model_specs"] = _normalise_models(exp["models"], exp["model_options"],
                                                          source)
    quick_models = exp["quick"].get("models")
    if quick_models is not None:
        unknown_quick = [m for m in quick_models if m not in exp["model_specs"]]
        if unknown_quick:
            _fail(source, "quick.models", f"{unknown_quick} are not in models {exp['models']}")
    unknown_protocols = [p for p in exp["quick"].get("protocols") or [] if p not in exp["protocols"]]
    if unknown_protocols:
        _fail(source, "quick.protocols", f"{unknown_protocols} are not in protocols {exp['protocols']}")
    return exp


def _experiment_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.glob("*/*.yaml")):
        if path.parent.name not in NOT_EXPERIMENT_DIRS and path.name not in NOT_EXPERIMENT_FILES:
            files.append(path)
    return files


def _read_yaml(path: Path) -> Any:
    try:
        with open(path) as fh:
            return yaml.load(fh, Loader=_LOADER)
    except yaml.YAMLError as err:
        raise ConfigError(f"experiment {path}: not valid YAML ({err})") from None


def load_experiment(name_or_path: str | os.PathLike) -> dict:
    """Load and check one experiment, by name (``dala-breakhis``) or by YAML path (absolute,
    relative to the working directory, or relative to ``experiments/``).

    The returned dict has every schema key (defaults filled), ``models`` as a list of names,
    ``model_specs`` and ``path`` (the YAML file).
    """
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.is_file()):
        known = []
        for candidate in _experiment_files(experiments_dir()):
            raw = _read_yaml(candidate)
            name = raw.get("name") if isinstance(raw, Mapping) else None
            known.append(name)
            if name == text:
                path = candidate
                break
        else:
            raise ConfigError(f"no experiment named {text!r} under {experiments_dir()}; known: "
                             f"{sorted(n for n in known if n)} (or give a YAML path)")
    if not path.is_file() and not path.is_absolute() and (experiments_dir() / path).is_file():
        path = experiments_dir() / path  # "dala/breakhis.yaml", relative to experiments/
    if not path.is_file():
        raise MissingFileError(f"experiment file {path} not found")
    exp = validate_experiment(_read_yaml(path), source=str(path))
    exp["path"] = str(path)
    return exp


def list_experiments() -> list[tuple[str, str, str]]:
    """``(name, title, path)`` of every experiment under ``experiments/``, sorted by name."""
    rows = []
    for path in _experiment_files(experiments_dir()):
        raw = _read_yaml(path)
        if isinstance(raw, Mapping) and "name" in raw:
            rows.append((str(raw["name"]), str(raw.get("title", "")), str(path)))
    return sorted(rows)


def resolve_train(experiment: Mapping, model: str, quick: bool = False) -> dict:
    """The ``train`` settings for one entry of ``models``.

    A ``train`` value given as a mapping with a ``default`` key is per model (e.g.
    ``preprocessing: {default: caffe, efficientnetb7: none}``): the entry's name, then its
    registry model, then ``default`` decide. With ``quick``, the ``quick`` block's training keys
    (everything but ``models``, ``protocols`` and ``max_images``) override the result.
    """
    if model not in experiment["model_specs"]:
        raise ConfigError(f"{model!r} is not a model of experiment {experiment['name']!r}: "
                         f"{experiment['models']}")
    registry_name = experiment["model_specs"][model]["model"]
    out = {}
    for key, value in experiment["train"].items():
        if isinstance(value, Mapping) and "default" in value:
            value = value.get(model, value.get(registry_name, value["default"]))
        out[key] = copy.deepcopy(value)
    if quick:
        for key, value in experiment["quick"].items():
            if key not in ("models", "protocols", "max_images"):
                out[key] = copy.deepcopy(value)
    return out


def published_for(experiment: Mapping) -> pd.DataFrame:
    """The published rows an experiment is compared with (its ``published_datasets`` only)."""
    df = load_published_files(experiment["published"])
    if df.empty:
        return df
    keep = df["dataset"].isin(list(experiment["published_datasets"]))
    return df[keep].reset_index(drop=True)
