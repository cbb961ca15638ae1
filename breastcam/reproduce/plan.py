"""An experiment (``experiments/<paper>/*.yaml``) -> the splits to make and the runs to train.

Planning reads the dataset's manifest but no pixels and trains nothing, so a plan can be
inspected (in tests, or written to disk by ``breastcam reproduce NAME --plan``: see
:mod:`~breastcam.reproduce.plan_file`) before hours of training.

- one :class:`SplitJob` per (subset, protocol): the rows to split, the protocol, the file;
- one :class:`PlannedRun` per (subset, protocol, model, fold, seed) with its run config
  (``breastcam.train`` schema; ``data.manifest`` / ``data.stain`` are filled in by the runner
  once the split file, the modres copies and the stain reference exist).

Subsets (``subsets: {by, values, mode}``): ``separate`` trains one model per value, ``pooled``
one model on all values, reported per value. A value whose images cannot be split (a class
missing, too few images or patients) is skipped with a note, never a crash. ``quick`` mode
always pools: the tiny samples it is meant for cannot be split per value.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from breastcam.errors import ConfigError
from breastcam.data import load_manifest
from breastcam.data.splits import get_protocol
from breastcam.report.experiment_spec import TRAIN_DATA_KEYS, TRAIN_PLAN_KEYS, TRAIN_TRAIN_KEYS
from breastcam.resources import checkout_root

# Full runs write their splits under the source checkout; installed from a wheel (REPO None),
# under the working directory (never into site-packages).
REPO = checkout_root()
ALL = "all"
OFFICIAL = "breakhis-official"  # protocol: the BreakHis authors' dsfold1..5 (breastcam.data.official)
MIN_IMAGES = 6  # fewer images than this cannot make train / val / test with every class seen
MIN_PER_CLASS = 2
# train.* keys of an experiment and where they go in a run config (breastcam/train/config.py).
_DATA_KEYS = TRAIN_DATA_KEYS
_TRAIN_KEYS = TRAIN_TRAIN_KEYS
_PLAN_KEYS = TRAIN_PLAN_KEYS  # handled by the planner itself


@dataclasses.dataclass
class SplitJob:
    """One split to make: ``rows`` of ``subset`` split by ``protocol`` (grouped if ``group``)."""

    subset: str  # subset value as text, or "all"
    protocol: str  # the experiment's protocol name: dala | ernet | modres | patient
    base: str  # the split protocol of breastcam.data: dala | ernet | modres
    group: str | None  # None or "patient"
    rows: pd.DataFrame
    path: Path  # where the split CSV is written
    stratify: list[str]
    fold: int | None = None  # breakhis-official: the authors' fold (1-5) this split is

    @property
    def key(self) -> str:
        return f"{self.subset}-{self.protocol}" + (f"-fold{self.fold}" if self.fold else "")


@dataclasses.dataclass
class PlannedRun:
    """One training run of a plan and the report row it feeds."""

    split: SplitJob
    model: str  # the experiment's model entry name (a registry name or a variant)
    registry: str  # the registry model it builds
    fold: int | None
    seed: int
    config: dict  # run config; data.manifest / data.stain completed by the runner
    train: dict  # the resolved experiment train settings (resolve_train)

    @property
    def run_dir(self) -> Path:
        return Path(self.config["output_dir"])

    @property
    def group(self) -> tuple[str, str, str]:
        """Runs with the same (subset, protocol, model) are repetitions (folds / seeds)."""
        return (self.split.subset, self.split.protocol, self.model)


@dataclasses.dataclass
class Plan:
    experiment: dict
    data_dir: Path
    out_dir: Path  # <out>/<experiment name>
    quick: bool
    manifest: pd.DataFrame
    splits: list[SplitJob]
    runs: list[PlannedRun]
    report_by: str | None  # column the test predictions are broken down by (pooled subsets)
    notes: list[str] = dataclasses.field(default_factory=list)
    deviations: list[str] = dataclasses.field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.runs))


def subset_text(value: Any) -> str:
    """``40``, ``40.0``, ``"40X"`` -> ``"40"`` (the published CSVs' spelling)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text[:-1] if text[-1:] in "xX" and text[:-1].isdigit() else text


def quick_sample(df: pd.DataFrame, max_images: int, seed: int = 0) -> pd.DataFrame:
    """At most ``max_images`` rows, deterministically, keeping patients whole where possible.

    Patients are visited in a seeded order, classes in turn (a patient counts for its most
    frequent class), and a patient is taken when all its images still fit, so every class keeps
    some images and no patient is cut in two. Without patient ids rows are drawn per class.
    """
    if len(df) <= max_images:
        return df.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    has_ids = (df["patient_id"].astype(str) != "").all()
    keys = df["patient_id"].astype(str) if has_ids else pd.Series(df.index.astype(str), index=df.index)
    units = {}
    for key, part in df.groupby(keys, sort=True):
        units[key] = (part["label_index"].mode().iloc[0], part.index.tolist())
    order = [list(units)[i] for i in rng.permutation(len(units))]
    by_class: dict[int, list[str]] = {}
    for key in order:
        by_class.setdefault(int(units[key][0]), []).append(key)
    taken: list[int] = []
    queues = [by_class[c] for c in sorted(by_class)]
    progress = True
    while progress:
        progress = False
        for queue in queues:
            while queue:
                key = queue.pop(0)
                idx = units[key][1]
                if len(taken) + len(idx) <= max_images:
                    taken.extend(idx)
                    progress = True
                    break
    return df.loc[sorted(taken)].reset_index(drop=True)


def splittable(rows: pd.DataFrame, n_classes: int, protocol: str, group: str | None) -> str | None:
    """Why ``rows`` cannot be split for training (``None``: it can)."""
    counts = rows["label_index"].value_counts()
    if len(rows) < MIN_IMAGES:
        return f"{len(rows)} image(s), fewer than {MIN_IMAGES}"
    missing = [c for c in range(n_classes) if counts.get(c, 0) < MIN_PER_CLASS]
    if missing:
        names = rows.drop_duplicates("label_index").set_index("label_index")["label"].to_dict()
        return ("fewer than %d images of class(es) %s" %
                (MIN_PER_CLASS, ", ".join(str(names.get(c, c)) for c in missing)))
    if group == "patient" and rows["patient_id"].nunique() < 3:
        return f"{rows['patient_id'].nunique()} patient(s), fewer than 3"
    if protocol == OFFICIAL:
        return None  # the authors' folds say where every image goes
    folds = get_protocol(protocol).folds
    if folds and len(rows) * 0.7 < 2:
        return "too few images for cross-validation folds"
    return None


def split_dir(experiment: Mapping, out_dir: Path, quick: bool) -> Path:
    """Full runs keep their splits in ``data_manifests/<experiment>/`` (repository root, or the
    working directory when breastcam is installed from a wheel);
    quick runs under their output folder, so a smoke test never touches the real splits."""
    if quick:
        return out_dir / "splits"
    return (REPO or Path.cwd()) / "data_manifests" / experiment["name"]


def _subsets(experiment: Mapping, df: pd.DataFrame, quick: bool, notes: list[str]
             ) -> tuple[list[tuple[str, pd.DataFrame]], str | None]:
    """``[(subset, rows)]`` to split and the column results are broken down by (pooled)."""
    spec = experiment.get("subsets")
    max_images = experiment.get("quick", {}).get("max_images") if quick else None
    if not spec:
        rows = quick_sample(df, int(max_images)) if max_images else df
        return [(ALL, rows)], None
    by = spec["by"]
    if by not in df.columns:
        raise ConfigError(f"experiment {experiment['name']}: subsets.by={by!r} is not a manifest "
                         f"column; columns: {list(df.columns)}")
    parts = []
    for value in spec["values"]:
        rows = df[df[by].map(subset_text) == subset_text(value)]
        if rows.empty:
            notes.append(f"{by} {subset_text(value)}: no images in the data; not run")
            continue
        parts.append((subset_text(value), quick_sample(rows, int(max_images)) if max_images else rows))
    if not parts:
        raise ConfigError(f"experiment {experiment['name']}: none of {by} {spec['values']} has "
                         "images under the data folder")
    if spec.get("mode") == "pooled" or quick:
        if quick and spec.get("mode") != "pooled":
            notes.append(f"quick mode: one model on all {by} values pooled (the paper trains one "
                         f"per {by}); results are reported per {by} from its test images")
        return [(ALL, pd.concat([p for _, p in parts]).reset_index(drop=True))], by
    return parts, None


def official_folds(experiment: Mapping, models: Sequence[str], quick: bool) -> list[int]:
    """The authors' folds (1-5) an experiment with protocol ``breakhis-official`` runs: its
    ``train.folds`` (quick: ``quick.folds``), all five when it names none."""
    from breastcam.data.official import FOLDS
    from breastcam.report import resolve_train

    train = resolve_train(experiment, models[0], quick=quick) if models else experiment["train"]
    folds = [int(k) for k in train.get("folds") or FOLDS]
    if experiment["dataset"] != "breakhis" or not set(folds) <= set(FOLDS):
        raise ConfigError(f"experiment {experiment['name']}: protocol {OFFICIAL} needs dataset "
                          f"breakhis and folds among {list(FOLDS)}, got {experiment['dataset']}, "
                          f"{folds}")
    return folds


def run_config(experiment: Mapping, model: str, train: Mapping, *, run_dir: Path,
               data_dir: Path, fold: int | None, seed: int) -> dict:
    """The ``breastcam.train`` config of one run (manifest and stain filled in later)."""
    spec = experiment["model_specs"][model]
    data: dict[str, Any] = {"manifest": None, "root": str(data_dir), "fold": fold}
    for key in _DATA_KEYS:
        if key in train:
            data[key] = copy.deepcopy(train[key])
    if data.get("augmentation") == "modres":
        data["augmentation"] = "none"  # paper C's copies are made offline (expand_modres)
    tr = {k: copy.deepcopy(train[k]) for k in _TRAIN_KEYS if k in train}
    return {
        "name": f"{experiment['name']}-{run_dir.parent.name}-{model}-{run_dir.name}",
        "output_dir": str(run_dir),
        "seed": int(seed),
        "data": data,
        "model": {"name": spec["model"], "weights": train.get("weights"),
                  "options": dict(spec["options"])},
        "train": tr,
    }


def make_plan(
    experiment: Mapping,
    data_dir: str | Path,
    *,
    out_dir: str | Path,
    quick: bool = False,
    seeds: Sequence[int] | None = None,
    models: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
    manifest: pd.DataFrame | None = None,
) -> Plan:
    """Plan an experiment: load the manifest, choose subsets and protocols, list the runs.

    ``out_dir`` is the experiment's output folder (``<out>/<name>``); runs go to
    ``out_dir/runs/<subset>-<protocol>/<model>/<fold_k|seed_s|run>``. ``seeds`` replace the
    experiment's ``train.seeds``; ``models`` / ``protocols`` pick some of the experiment's (a
    partial rerun). ``manifest`` skips reading the data folder (tests).
    """
    from breastcam.report import resolve_train

    exp = dict(experiment)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    notes: list[str] = []
    deviations: list[str] = []
    if manifest is None:
        manifest = load_manifest(exp["dataset"], data_dir, **dict(exp.get("filters") or {}))
    n_classes = int(manifest["label_index"].max()) + 1
    parts, report_by = _subsets(exp, manifest, quick, notes)

    quick_block = dict(exp.get("quick") or {})
    chosen = list(quick_block.get("models") or exp["models"]) if quick else list(exp["models"])
    if models is not None:
        unknown = [m for m in models if m not in exp["model_specs"]]
        if unknown:
            raise ConfigError(f"models {unknown} are not in experiment {exp['name']}: "
                             f"{exp['models']}")
        notes.append(f"only models {list(models)} were run (of {exp['models']})")
    models = list(models) if models is not None else chosen
    if protocols is not None:
        unknown = [p for p in protocols if p not in exp["protocols"]]
        if unknown:
            raise ConfigError(f"protocols {unknown} are not in experiment {exp['name']}: "
                             f"{exp['protocols']}")
        notes.append(f"only protocols {list(protocols)} were run (of {exp['protocols']})")
    elif quick and quick_block.get("protocols"):
        protocols = list(quick_block["protocols"])
    if quick:
        shrunk = {k: v for k, v in quick_block.items() if k not in ("models", "protocols")}
        deviations.append(
            "quick mode (a smoke test, not a reproduction): " + ", ".join(
                f"{k}={v}" for k, v in shrunk.items()) + f"; models {models}"
            + (f"; protocols {list(protocols)}" if protocols is not None else ""))
        if "weights" in quick_block and quick_block["weights"] is None:
            deviations.append("quick mode: weights=None (random initialisation), the paper starts "
                              "from ImageNet weights")

    extra = dict(exp.get("split") or {})
    stratify = list(np.atleast_1d(extra.get("stratify", ["label"])))
    if report_by and report_by not in stratify and not quick:
        stratify.append(report_by)
    base = exp["protocols"][0]
    sdir = split_dir(exp, out_dir, quick)
    splits: list[SplitJob] = []
    for protocol in (protocols if protocols is not None else exp["protocols"]):
        group = "patient" if protocol == "patient" else None
        if group and (manifest["patient_id"].astype(str) == "").any():
            notes.append(f"protocol 'patient' skipped: {exp['dataset']} has no patient ids")
            continue
        # the authors' folds are five splits (test sets differ); other protocols are one each
        official = official_folds(exp, models, quick) if protocol == OFFICIAL else [None]
        for subset, rows in parts:
            why = splittable(rows, n_classes, OFFICIAL if official[0] else base, group)
            label = "all images" if subset == ALL else f"{exp['subsets']['by']} {subset}"
            if why:
                notes.append(f"{label}, protocol {protocol}: not run ({why})")
                continue
            for fold in official:
                job = SplitJob(subset, protocol, OFFICIAL if fold else base, group,
                               rows.reset_index(drop=True), sdir, stratify, fold)
                job.path = sdir / f"{job.key}.csv"
                splits.append(job)
    if "patient" in exp["protocols"] and any(s.group for s in splits):
        deviations.append("protocol 'patient' (breastcam's, not the paper's): the same ratios "
                          "with no patient in two splits; the paper split images at random")

    runs: list[PlannedRun] = []
    for job in splits:
        for model in models:
            train = resolve_train(exp, model, quick=quick)
            cv = job.base != OFFICIAL and get_protocol(job.base).folds
            folds = list(train.get("folds") or [None]) if cv else [None]
            run_seeds = list(seeds) if seeds is not None else list(train.get("seeds") or [0])
            for fold in folds:
                for seed in run_seeds:
                    parts_ = ([f"fold_{fold}"] if fold is not None else []) + (
                        [f"seed_{seed}"] if len(run_seeds) > 1 else [])
                    run_dir = out_dir / "runs" / job.key / model / ("_".join(parts_) or "run")
                    cfg = run_config(exp, model, train, run_dir=run_dir, data_dir=data_dir,
                                     fold=fold, seed=seed)
                    runs.append(PlannedRun(job, model, exp["model_specs"][model]["model"], fold,
                                           int(seed), cfg, train))
    return Plan(exp, data_dir, out_dir, quick, manifest, splits, runs, report_by, notes, deviations)
