"""``breastcam reproduce NAME --plan | --run ID | --run-index K | --collect | --workers N``.

A study is an experiment's runs planned on disk (:mod:`~breastcam.reproduce.plan_file`), so the
schedulers users already have can spread them: a SLURM job array calls ``--run-index
$SLURM_ARRAY_TASK_ID``, GNU parallel reads ``runs.txt``, ``--workers`` runs N processes here.
Each run claims its directory first (:mod:`~breastcam.reproduce.claim`), so overlapping
schedulers never write one run twice. ``--collect`` (:mod:`~breastcam.reproduce.gather`)
reports whatever has finished. docs/STUDIES.md is the user's guide.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path
from typing import Callable, Sequence

from breastcam.errors import MissingFileError, UsageError
from breastcam.reproduce import gather, plan_file, runner
from breastcam.reproduce.claim import STALE_AFTER_S

SPECIAL = "trains nothing of its own or explains after training"


def plan_study(experiment: dict, data_dir: str | Path, out: str | Path, *, quick: bool = False,
               seeds: Sequence[int] | None = None, models: Sequence[str] | None = None,
               protocols: Sequence[str] | None = None, force: bool = False,
               allow_partial: bool = False, log: Callable[[str], None] = print) -> dict:
    """Plan ``experiment`` into ``<out>/<name>``: splits, run configs, plan.json, runs.txt.

    ``experiment`` is a loaded experiment dict (tests may shrink its ``quick`` block: the plan
    records the experiment as planned, and every later step reads it from there).
    """
    from breastcam.reproduce import check_plan_files, plan as planning
    from breastcam.reproduce.committed import check_download
    from breastcam.reproduce.special import HANDLERS

    if experiment["name"] in HANDLERS:
        raise UsageError(f"experiment {experiment['name']} {SPECIAL}; it has no study mode: run "
                         f"`breastcam reproduce {experiment['name']} --data-dir DIR` (it reuses "
                         "the finished runs of the experiments it builds on)")
    data_dir = Path(data_dir).resolve()
    if not data_dir.exists():
        raise MissingFileError(f"data folder {data_dir} not found: give the dataset root with "
                                "--data-dir")
    folder = Path(out).resolve() / experiment["name"]
    plan = planning.make_plan(experiment, data_dir, out_dir=folder, quick=quick, seeds=seeds,
                              models=models, protocols=protocols)
    # A download that is not the complete release was refused before (reproduce()); with
    # --allow-partial / --quick its fresh splits are noted in the report.
    partial = check_download(experiment, plan.manifest, data_dir, allow_partial=allow_partial or quick)
    if partial:
        plan.notes.append(partial)
    check_plan_files(plan, log)  # every image checked before the first split or run
    return plan_file.write_study(plan, force=force)


def run_planned(folder: str | Path, run_id: str | None = None, index: int | None = None, *,
                stale_after: float = STALE_AFTER_S, verbose: int = 0,
                log: Callable[[str], None] = print) -> int:
    """Run exactly one planned run (by id or 0-based index); 0 when it finished, 1 if it failed.

    Raises :class:`~breastcam.errors.RunStateError` when another worker holds the run. SIGTERM
    (SLURM's time limit, ``scancel``) stops the run with its claim released, so the next
    ``--run`` resumes it at once; after SIGKILL the claim is taken over as stale.
    """
    study = plan_file.load_study(folder)
    entry = plan_file.select(study, run_id, index)
    log(f"{study['name']} {entry['id']}: pid {os.getpid()} on {socket.gethostname()}")
    with _sigterm_as_exit():
        error = runner.train_one(Path(entry["config"]), Path(entry["run_dir"]), entry["id"],
                                 study["report_by"], stale_after=stale_after, verbose=verbose,
                                 log=log)
    log(f"{entry['id']}: " + ("finished" if error is None else f"failed: {error}"))
    return 0 if error is None else 1


class _sigterm_as_exit:
    """SIGTERM raises SystemExit inside the run, so ``with claim`` blocks release their claim."""

    def __enter__(self) -> None:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._exit)

    @staticmethod
    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def run_all_here(folder: Path, study: dict, *, stale_after: float = STALE_AFTER_S,
                 verbose: int = 0, log: Callable[[str], None] = print) -> None:
    """Every run of the study in this process, one after another (a claimed run is skipped)."""
    from breastcam.errors import RunStateError

    runs = study["runs"]
    for entry in runs:
        log(f"[{entry['index'] + 1}/{len(runs)}] {entry['id']}")
        try:
            runner.train_one(Path(entry["config"]), Path(entry["run_dir"]), entry["id"],
                             study["report_by"], stale_after=stale_after, verbose=verbose,
                             log=log)
        except RunStateError as err:  # another worker holds it; --collect lists it as missing
            log(f"  skipped: {err}")


def collect_study(folder: str | Path, *, log: Callable[[str], None] = print) -> int:
    """Report the finished runs; 0 when every planned run finished, else 1 (report written)."""
    _, summary = gather.report_study(folder, log=log)
    return 0 if summary["failed"] == 0 and summary["missing"] == 0 else 1


def estimate_text(study: dict) -> str:
    """The plan's run count and cost estimate, for ``--plan``."""
    from breastcam.reproduce.cost import estimate

    table = estimate(study)
    n = len(study["runs"])
    lines = [f"{study['name']}: {n} run(s) planned in {Path(study['out']) / study['name']}"
             f"/{plan_file.PLAN_FILE} (commands: {plan_file.RUNS_FILE})"]
    if n:
        per_model = table.groupby("model", sort=False)["tflop"].agg(["count", "sum"])
        lines.append(f"estimated cost: {_flop(table['tflop'].sum())} in all (an estimate, "
                     "not a measurement: forward GFLOPs of the model at the run's input size x "
                     "(3 x training + validation images) x epochs + test images; ignores data "
                     "loading, augmentation, early stopping)")
        lines += [f"  {model}: {int(row['count'])} run(s), {_flop(row['sum'])}"
                  for model, row in per_model.iterrows()]
        lines.append(f"run them: --workers N here, `sbatch --array=0-{n - 1} "
                     f"{slurm_template()} {study['name']} {study['out']}`, or "
                     f"`parallel -j N < {Path(study['out']) / study['name'] / plan_file.RUNS_FILE}`"
                     "; then --collect")
    return "\n".join(lines)


def _flop(tflop: float) -> str:
    if tflop >= 1e3:
        return f"{tflop / 1e3:,.2f} PFLOP"
    return f"{tflop:,.2f} TFLOP" if tflop >= 1 else f"{tflop * 1e3:,.1f} GFLOP"


def slurm_template() -> Path:
    """The SLURM job-array script of docs/STUDIES.md (``experiments/slurm/study.sbatch``)."""
    from breastcam.report.published import experiments_dir

    return experiments_dir() / "slurm" / "study.sbatch"
