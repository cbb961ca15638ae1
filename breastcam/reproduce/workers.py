"""``--workers N [--gpus 0,1,...]``: run a study's planned runs N at a time on this machine.

Each run is its own process (``python -m breastcam reproduce NAME --run ID``), the same command
a SLURM array task or GNU parallel runs, so a crash or an out-of-memory kill loses one run, not
the study, and TensorFlow's memory is returned between runs. With ``--gpus`` each process sees
one GPU (``CUDA_VISIBLE_DEVICES``; slot k uses the k-th id in turn, so N > GPUs shares them);
without, the processes share the CPUs (and every GPU, as they would anyway). A thread pool of the
standard library waits on the processes; there is no scheduler of our own.
"""

from __future__ import annotations

import os
import queue
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Sequence

from breastcam.errors import UsageError
from breastcam.reproduce import gather
from breastcam.reproduce.claim import STALE_AFTER_S
from breastcam.reproduce.plan_file import load_study, run_command

LOG_DIR = "logs"


def _command(study: dict, entry: dict, *, stale_after: float, verbose: bool) -> list[str]:
    """The entry's line of ``runs.txt``, run with this Python (the one breastcam is imported in)."""
    line = run_command(study, entry, program=f"{shlex.quote(sys.executable)} -m breastcam")
    return shlex.split(line) + ["--stale-after", str(stale_after)] + (
        ["--verbose"] if verbose else [])


def run_workers(folder: str | Path, workers: int, gpus: Sequence[str] | None = None, *,
                stale_after: float = STALE_AFTER_S, verbose: bool = False,
                log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """Run every unfinished run of the study in ``folder``, ``workers`` at a time, then collect.

    Each process writes its output to ``<folder>/logs/<run id>.log``. Runs another worker holds
    are left to it (``--collect`` lists them if they are still missing). Returns what
    :func:`breastcam.reproduce.gather.report_study` returns.
    """
    if workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1 process")
    if gpus is not None and not gpus:
        raise UsageError("--gpus: give GPU ids, e.g. --gpus 0,1")
    folder = Path(folder)
    study = load_study(folder)
    todo = []
    for entry, state, detail in gather.run_states(study, stale_after):
        if state == gather.FINISHED:
            continue
        if state == gather.RUNNING:
            log(f"  {entry['id']}: {detail}; left to that worker")
            continue
        todo.append(entry)
    log(f"{study['name']}: {len(todo)} of {len(study['runs'])} run(s) to run, {workers} at a time"
        + (f" on GPUs {','.join(gpus)}" if gpus else ""))
    slots: queue.Queue = queue.Queue()
    for k in range(workers):
        slots.put(gpus[k % len(gpus)] if gpus else None)

    def launch(entry: dict) -> tuple[dict, int, Path]:
        gpu = slots.get()
        try:
            env = dict(os.environ)
            if gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = str(gpu)
            path = folder / LOG_DIR / (entry["id"].replace("/", "__") + ".log")
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as fh:
                code = subprocess.run(_command(study, entry, stale_after=stale_after,
                                               verbose=verbose),
                                      stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
            return entry, code, path
        finally:
            slots.put(gpu)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(launch, entry) for entry in todo]
        for done, future in enumerate(as_completed(futures), 1):
            entry, code, path = future.result()
            what = "done" if code == 0 else f"exit status {code}, see {path}"
            log(f"[{done}/{len(todo)}] {entry['id']}: {what}")
    return gather.report_study(folder, log=log)
