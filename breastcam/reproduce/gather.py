"""Collect a study from disk: the state of every planned run, and the report of the finished ones.

Whatever ran the runs (this process, ``--workers``, a SLURM array, GNU parallel), the run
directories are the only record, so every mode ends here and the report is the same. Runs that
are not finished are listed in the report's notes with why (failed, running, interrupted, not
started); the report covers the finished ones.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

from breastcam.reproduce import collect, report, runner
from breastcam.reproduce.claim import LOCK_NAME, STALE_AFTER_S, describe, read_claim, stale_reason
from breastcam.reproduce.plan_file import load_study

FINISHED, FAILED, RUNNING, INTERRUPTED, NOT_STARTED = (
    "finished", "failed", "running", "interrupted", "not started")


@dataclasses.dataclass
class _Planned:
    """What :func:`breastcam.reproduce.collect.collect` reads of a plan."""

    experiment: dict
    report_by: str | None


def run_state(entry: dict, report_by: str | None,
              stale_after: float = STALE_AFTER_S) -> tuple[str, str]:
    """``(state, detail)`` of one planned run, read from its run directory."""
    run_dir = Path(entry["run_dir"])
    status = _read(run_dir / "status.json")
    evaluated = (run_dir / "metrics.json").is_file() and (
        report_by is None or (run_dir / f"metrics_by_{report_by}.json").is_file())
    if status.get("state") == "finished" and evaluated:
        return FINISHED, ""
    lock = run_dir / LOCK_NAME
    if lock.exists():
        holder = read_claim(lock)
        why = stale_reason(lock, holder, stale_after)
        if why is None:
            return RUNNING, f"claimed by {describe(holder)}"
        return INTERRUPTED, f"its worker stopped ({why}); --run resumes it"
    failure = _read(run_dir / runner.FAILURE_FILE)
    if failure:
        return FAILED, str(failure.get("error", "see error.txt"))
    if status.get("state") == "finished":
        return INTERRUPTED, "trained, not evaluated; --run evaluates it"
    if (run_dir / "config.yaml").is_file():
        return INTERRUPTED, "stopped before its last epoch; --run resumes it"
    return NOT_STARTED, "not started"


def run_states(study: dict, stale_after: float = STALE_AFTER_S) -> list[tuple[dict, str, str]]:
    """``(entry, state, detail)`` of every run of ``study``, in plan order."""
    return [(e, *run_state(e, study["report_by"], stale_after)) for e in study["runs"]]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def report_study(folder: str | Path, *, log: Callable[[str], None] = print
                 ) -> tuple[Path, dict]:
    """Write the report of the finished runs of the study in ``folder``.

    Returns ``(index.html, summary)``; the summary (also ``status.json``, ``failures.json`` and
    ``missing.json``) counts the planned, failed and missing runs.
    """
    folder = Path(folder)
    study = load_study(folder)
    exp = study["experiment"]
    groups: dict[tuple[str, str, str], list[Path]] = {}
    failures: list[tuple[str, str]] = []
    missing: list[tuple[str, str]] = []
    for entry, state, detail in run_states(study):
        if state == FINISHED:
            groups.setdefault(tuple(entry["group"]), []).append(Path(entry["run_dir"]))
        elif state == FAILED:
            failures.append((entry["id"], detail))
        else:
            missing.append((entry["id"], f"{state}: {detail}"))
    outcome = runner.Outcome(hashes=dict(study["hashes"]), groups=groups,
                             aggregates=runner.aggregate(groups), failures=failures)
    reproduced = collect.collect(_Planned(exp, study["report_by"]), outcome)
    notes = list(study["notes"]) + [f"run not finished, not in the tables: {run} ({why})"
                                    for run, why in missing]
    html = report.assemble(
        folder, experiment=exp, reproduced=reproduced,
        figures=report.run_figures(groups, outcome.aggregates), config=study["report_config"],
        hashes=outcome.hashes, deviations=study["deviations"], notes=notes, failures=failures,
        trust=report.trust_table(groups), ensembles=report.ensemble_table(groups, folder, notes),
    )
    summary = {"runs": len(study["runs"]), "failed": len(failures), "report": str(html)}
    (folder / "status.json").write_text(json.dumps(summary, indent=2))
    (folder / "failures.json").write_text(json.dumps(failures, indent=2))
    (folder / "missing.json").write_text(json.dumps(missing, indent=2))
    finished = len(study["runs"]) - len(failures) - len(missing)
    log(f"{study['name']}: {finished} of {len(study['runs'])} run(s) finished, "
        f"{len(failures)} failed, {len(missing)} missing; report {html}")
    for run, why in failures:
        log(f"  failed: {run}: {why}")
    for run, why in missing:
        log(f"  missing: {run}: {why}")
    return html, {**summary, "missing": len(missing)}
