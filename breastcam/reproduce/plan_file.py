"""A study on disk: an experiment's planned runs as files that any scheduler can execute.

``write_study(plan)`` makes everything the runs share (the manifest, the splits, paper C's
offline copies, paper B's stain reference), writes one run config per run under ``configs/``,
and ``plan.json`` (one entry per run: index, id, config, run dir, report group) and ``runs.txt``
(one shell command per run). After that every run is independent: ``breastcam reproduce NAME
--run ID`` (or ``--run-index K``) needs nothing but ``plan.json`` and the files it names. All
paths in it are absolute, so the study folder must be at the same path on every machine that
runs it (a shared filesystem; see docs/STUDIES.md).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from breastcam.data.manifest import file_sha256, write_manifest
from breastcam.errors import RunStateError, UsageError
from breastcam.reproduce import runner
from breastcam.reproduce.plan import Plan

PLAN_FILE = "plan.json"
RUNS_FILE = "runs.txt"
CONFIG_DIR = "configs"
FORMAT = 1


def study_dir(name: str, out: str | Path) -> Path:
    """``<out>/<experiment name>``: where ``reproduce`` keeps the experiment's plan and runs.

    ``name`` may be a YAML path (the experiment's ``name`` then decides the folder).
    """
    if name.endswith((".yaml", ".yml")):
        from breastcam.report import load_experiment

        name = load_experiment(name)["name"]
    return Path(out).resolve() / name


def _atomic_write(path: Path, text: str) -> None:
    # readers on other machines never see half a plan
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_study(plan: Plan, *, force: bool = False) -> dict:
    """Make the shared inputs of ``plan`` and write its configs, ``plan.json`` and ``runs.txt``.

    Rewriting the plan of a study in progress is safe: identical split files are reused, run
    configs are rewritten with the same content, and a run directory refuses (when it runs) a
    config that differs from the one it was started with.
    """
    from breastcam.train.config import dump_config

    out = plan.out_dir
    out.mkdir(parents=True, exist_ok=True)
    outcome = runner.Outcome()
    manifest_path = out / "manifest.csv"
    outcome.hashes[runner._relative(manifest_path)] = write_manifest(plan.manifest, manifest_path)
    splits = runner.make_splits(plan, force=force)
    for job in plan.splits:
        outcome.hashes[runner._relative(job.path)] = file_sha256(job.path)
    runner.prepare_inputs(plan, splits, outcome)  # may drop runs of folds a split lacks

    entries = []
    for index, run in enumerate(plan.runs):
        run_id = runner.run_label(run)
        config = out / CONFIG_DIR / f"{run_id}.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        dump_config(run.config, config)
        entries.append({"index": index, "id": run_id, "config": str(config),
                        "run_dir": str(run.run_dir), "group": list(run.group)})
    exp = plan.experiment
    study = {
        "format": FORMAT,
        "name": exp["name"],
        "out": str(out.parent),  # the --out of every command
        "experiment": exp,
        "data_dir": str(plan.data_dir),
        "quick": plan.quick,
        "report_by": plan.report_by,
        "splits": [str(job.path) for job in plan.splits],
        "notes": list(plan.notes),
        "deviations": list(plan.deviations),
        "hashes": outcome.hashes,
        "report_config": {
            "experiment": {k: v for k, v in exp.items() if k != "model_specs"},
            "quick": plan.quick, "data_dir": str(plan.data_dir),
            "run_configs": {r.model: r.config for r in plan.runs[::-1]},
        },
        "runs": entries,
    }
    _atomic_write(out / PLAN_FILE, json.dumps(study, indent=1, default=str) + "\n")
    _atomic_write(out / RUNS_FILE, "".join(run_command(study, e) + "\n" for e in entries))
    return study


def run_command(study: dict, entry: dict, program: str = "breastcam") -> str:
    """The shell command that runs one entry (a line of ``runs.txt``)."""
    return " ".join([program, "reproduce", shlex.quote(study["name"]), "--out",
                     shlex.quote(study["out"]), "--run", shlex.quote(entry["id"])])


def load_study(folder: str | Path) -> dict:
    """Read ``<folder>/plan.json``; a missing plan says how to make one."""
    path = Path(folder) / PLAN_FILE
    if not path.is_file():
        raise RunStateError(
            f"no study plan at {path}: make one with `breastcam reproduce {Path(folder).name} "
            f"--data-dir DIR --plan --out {Path(folder).parent}` (add --quick for the smoke-test "
            "version)")
    study = json.loads(path.read_text())
    if study.get("format") != FORMAT:
        raise RunStateError(f"{path} has plan format {study.get('format')!r}, this breastcam "
                            f"reads format {FORMAT}: plan the study again with --plan")
    return study


def select(study: dict, run_id: str | None = None, index: int | None = None) -> dict[str, Any]:
    """The entry of ``run_id`` or of ``index`` (0-based, a SLURM array task id)."""
    runs = study["runs"]
    if index is not None:
        if not 0 <= index < len(runs):
            raise UsageError(f"--run-index {index}: the plan of {study['name']} has {len(runs)} "
                             f"run(s), indices 0..{len(runs) - 1}")
        return runs[index]
    for entry in runs:
        if entry["id"] == run_id:
            return entry
    known = ", ".join(e["id"] for e in runs[:5]) + (" ..." if len(runs) > 5 else "")
    raise UsageError(f"--run {run_id!r} is not a run of the plan of {study['name']} "
                     f"({len(runs)} runs: {known}); the ids are in plan.json and runs.txt")
