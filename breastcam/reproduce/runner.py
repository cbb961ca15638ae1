"""Execute a :class:`~breastcam.reproduce.plan.Plan`: split, (modres copies, stain reference),
train, evaluate, aggregate.

Every step can be rerun: splits are written with ``write_split`` (an identical file is reused,
a different one refused unless ``force``), finished runs are not retrained
(``breastcam.train.run`` resumes or returns them), evaluated runs keep their ``metrics.json``.
A run that fails (a model whose weights cannot be downloaded offline, ...) is recorded and the
others go on; the report lists the failures.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
import warnings
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from breastcam.console import progress
from breastcam.errors import ConfigError
from breastcam.data import make_split, write_split
from breastcam.data.manifest import file_sha256, write_manifest
from breastcam.data.official import attach_official_folds, official_split
from breastcam.errors import RunStateError
from breastcam.reproduce.claim import STALE_AFTER_S, claim_run
from breastcam.reproduce.plan import Plan, PlannedRun, SplitJob
from breastcam.runs import files

FAILURE_FILE = "failure.json"  # {"run", "error"} of a run's last failed attempt


@dataclasses.dataclass
class Outcome:
    """What execution produced, for :mod:`breastcam.reproduce.collect` and the report."""

    hashes: dict[str, str] = dataclasses.field(default_factory=dict)  # file -> sha256
    groups: dict[tuple[str, str, str], list[Path]] = dataclasses.field(default_factory=dict)
    aggregates: dict[tuple[str, str, str], Path] = dataclasses.field(default_factory=dict)
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (run, error)
    stain_files: dict[str, str] = dataclasses.field(default_factory=dict)  # split key -> json


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def run_label(run: PlannedRun) -> str:
    """A run's id in logs, plans and reports: ``<subset>-<protocol>/<model>/<run dir name>``."""
    return f"{run.split.key}/{run.model}/{run.run_dir.name}"


def make_splits(plan: Plan, *, force: bool = False) -> dict[str, pd.DataFrame]:
    """Split every job and write its file; returns ``{split key: split rows}``.

    Warnings of the splitter (a class too small to stratify, fewer patient folds) become notes.
    """
    from breastcam.reproduce.committed import committed_split

    out = {}
    for job in plan.splits:
        # a complete download uses the committed split (data_manifests/splits/); else split afresh
        df = None if plan.quick else committed_split(plan.experiment, job, plan.data_dir)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if df is None and job.fold:  # the BreakHis authors' fold (breakhis-official)
                df = official_split(attach_official_folds(job.rows, _breakhis_reference()),
                                    job.fold, seed=0)
            elif df is None:
                df = make_split(job.rows, job.base, group=job.group, seed=0, stratify=job.stratify)
        for w in caught:
            plan.notes.append(f"split {job.key}: {w.message}")
        job.path.parent.mkdir(parents=True, exist_ok=True)
        write_split(df, job.path, force=force)  # refuses a different existing file
        out[job.key] = df
    return out


def _breakhis_reference() -> pd.DataFrame:
    """``data_manifests/breakhis.csv``: the authors' folds of every image (official_fold1..5)."""
    from breastcam.data import read_manifest
    from breastcam.resources import data_manifests_dir

    return read_manifest(data_manifests_dir() / "breakhis.csv")


def _modres_manifest(plan: Plan, job: SplitJob, df: pd.DataFrame) -> Path:
    """Paper C's 6x copies of the training split only; returns the expanded manifest."""
    from breastcam.augment import expand_modres

    folder = plan.out_dir / "modres" / job.key
    path = folder / "manifest.csv"
    if path.is_file() and (folder / "source.sha256").read_text().strip() == file_sha256(job.path):
        return path  # the copies of this very split exist already
    expanded = expand_modres(df, plan.data_dir, folder / "images", seed=0)
    write_manifest(expanded, path)
    (folder / "source.sha256").write_text(file_sha256(job.path) + "\n")
    return path


def _stain_reference(plan: Plan, job: SplitJob, df: pd.DataFrame, given) -> str:
    """Paper B's Macenko reference: the given file, or the first training image (by path) that
    can be fitted; the fitted reference is saved as JSON beside the report."""
    if given:
        return str(given)
    from breastcam.data.decode import read_image
    from breastcam.stain import Macenko

    path = plan.out_dir / "stain" / f"{job.key}.json"
    if path.is_file():
        return str(path)
    candidates = sorted(df.loc[df["split"] != "test", "path"].astype(str))
    errors = []
    macenko = Macenko()  # one instance: its estimator is traced once, not once per candidate
    for rel in candidates[:20]:
        try:
            fitted = macenko.fit(read_image(plan.data_dir / rel))
        except ValueError as err:
            errors.append(f"{rel}: {err}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        fitted.save(path)
        (path.with_suffix(".source.txt")).write_text(rel + "\n")
        plan.notes.append(f"split {job.key}: Macenko reference = {rel} (first training image by "
                          "path that can be fitted); fit saved to " + _relative(path))
        return str(path)
    raise ConfigError(f"split {job.key}: no training image could serve as a Macenko reference "
                     f"({'; '.join(errors[:3])}); give train.stain.reference in the experiment")


def prepare_inputs(plan: Plan, splits: dict[str, pd.DataFrame], outcome: Outcome) -> None:
    """Fill each run's ``data.manifest`` (the split, or its modres expansion) and ``data.stain``;
    drop runs of folds the split does not have (grouped cross-validation on few patients)."""
    manifests: dict[str, Path] = {}
    stains: dict[str, str] = {}
    keep = []
    for run in plan.runs:
        job, df = run.split, splits[run.split.key]
        if run.fold is not None and run.fold not in set(df.get("fold", pd.Series([], dtype=int))):
            plan.notes.append(f"split {job.key}: fold {run.fold} does not exist; {run.model} "
                              "skips it")
            continue
        if run.train.get("augmentation") == "modres":
            if job.key not in manifests:
                manifests[job.key] = _modres_manifest(plan, job, df)
            run.config["data"]["manifest"] = str(manifests[job.key])
        else:
            run.config["data"]["manifest"] = str(job.path)
        stain = run.train.get("stain")
        if stain:
            if job.key not in stains:
                stains[job.key] = _stain_reference(plan, job, df, stain.get("reference"))
            run.config["data"]["stain"] = {"method": stain.get("method", "macenko"),
                                           "reference": stains[job.key]}
        keep.append(run)
    plan.runs = keep
    outcome.stain_files.update(stains)
    for key, path in manifests.items():
        outcome.hashes[_relative(path)] = file_sha256(path)
    for path in stains.values():
        outcome.hashes[_relative(Path(path))] = file_sha256(path)


def _evaluate(run_dir: Path, report_by: str | None) -> None:
    from breastcam.evaluate import evaluate_run

    metrics = run_dir / "metrics.json"
    by_file = run_dir / f"metrics_by_{report_by}.json" if report_by else None
    fresh = metrics.is_file() and metrics.stat().st_mtime >= (run_dir / files.BEST).stat().st_mtime
    if fresh and (by_file is None or by_file.is_file()):
        return
    _calibrate(run_dir)
    evaluate_run(run_dir, group_by=[report_by] if report_by else [])


def _calibrate(run_dir: Path) -> None:
    """Temperature and conformal sets from the run's validation split, where it has enough
    images (the report's trust section); a run without them is evaluated uncalibrated."""
    import warnings

    from breastcam.errors import DataError
    from breastcam.evaluate.calibrate_run import calibrate_run

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # too few images for alpha: recorded in calibration.json
            calibrate_run(run_dir)
    except DataError:
        pass


def train_one(config: Path | Mapping, run_dir: Path, label: str, report_by: str | None, *,
              stale_after: float = STALE_AFTER_S, verbose: int = 0,
              log: Callable[[str], None] = print) -> str | None:
    """Claim, train (or resume), evaluate and release one run; the one way every mode runs a run.

    Returns ``None`` when the run is finished and evaluated, else the error of the failed run
    (also written to ``error.txt`` with its traceback and to ``failure.json`` for ``--collect``).
    Raises :class:`~breastcam.errors.RunStateError` when another worker holds the run.
    """
    from breastcam.train import run as train_run
    from breastcam.train.run import BACKUP_DIR, _backed_up_epochs

    with claim_run(run_dir, label, stale_after=stale_after) as claim:
        if claim.took_over:
            log(f"  {label}: {claim.took_over}")
        done = _backed_up_epochs(run_dir / BACKUP_DIR)
        if done:
            log(f"  {label}: resuming after epoch {done} (BackupAndRestore state in "
                f"{run_dir / BACKUP_DIR})")
        for old in (FAILURE_FILE, "error.txt"):  # a new attempt: the last one's error is void
            (run_dir / old).unlink(missing_ok=True)
        try:
            train_run(config, verbose=verbose)
            _evaluate(run_dir, report_by)
        except Exception as err:  # one failed run must not lose the others' hours
            message = f"{type(err).__name__}: {err}"
            (run_dir / "error.txt").write_text(traceback.format_exc())
            (run_dir / FAILURE_FILE).write_text(json.dumps({"run": label, "error": message}))
            log(f"  failed: {message}")
            return message
    return None


def aggregate(groups: Mapping[tuple[str, str, str], list[Path]]) -> dict:
    """Mean +- std of each group of repeated runs (folds / seeds) in ``<model>/aggregate``."""
    from breastcam.evaluate import aggregate_runs

    out = {}
    for group, dirs in groups.items():
        if len(dirs) > 1:
            out[group] = dirs[0].parent / "aggregate"
            aggregate_runs(dirs, out[group])
    return out


def execute(
    plan: Plan,
    *,
    force: bool = False,
    verbose: int = 0,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Make the splits, train and evaluate every run, aggregate repetitions."""
    outcome = Outcome()
    splits = make_splits(plan, force=force)
    for job in plan.splits:
        outcome.hashes[_relative(job.path)] = file_sha256(job.path)
    prepare_inputs(plan, splits, outcome)
    for i, run in enumerate(progress(plan.runs, desc="runs", unit="run", min_items=2), 1):
        label = run_label(run)
        log(f"[{i}/{len(plan.runs)}] {label}")
        try:
            error = train_one(run.config, run.run_dir, label, plan.report_by, verbose=verbose,
                              log=log)
        except RunStateError as err:  # another worker holds it: not ours to write
            plan.notes.append(f"run {label} skipped: {err}")
            log(f"  skipped: {err}")
            continue
        if error is not None:
            outcome.failures.append((label, error))
            continue
        outcome.groups.setdefault(run.group, []).append(run.run_dir)
    outcome.aggregates = aggregate(outcome.groups)
    (plan.out_dir / "failures.json").write_text(json.dumps(outcome.failures, indent=2))
    return outcome
