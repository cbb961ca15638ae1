"""Study mode end to end on the real BreakHis samples (tiny study: see fixtures_study.py).

- ``--workers 2`` (two processes on the CPU) gives the report of the sequential run;
- the SLURM template's command, run locally once per array index, then ``--collect``, too;
- two ``--run`` of one run at once: one trains, the other says the run is claimed; after
  SIGKILL of the first, ``--run`` takes the stale claim over and resumes from BackupAndRestore.

Tolerance: the runs are the same configs with the same seeds and TensorFlow op determinism on
one machine, in different processes; numbers may differ only by float reduction order, so every
reproduced value (metric, CI bound) must agree within 1e-6 absolute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from breastcam.cli import main
from breastcam.reproduce import train_and_report
from breastcam.reproduce.claim import LOCK_NAME
from breastcam.reproduce.study import plan_study, slurm_template
from fixtures_study import make_tiny_experiment

pytestmark = pytest.mark.slow

ATOL = 1e-6
NUMERIC = ["value", "ci_low", "ci_high", "std"]
KEY = ["dataset", "subset", "protocol", "model", "metric"]


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `breastcam`
    return env


def _table(folder: Path) -> pd.DataFrame:
    df = pd.read_csv(folder / "reproduced.csv", dtype={"subset": str})
    return df.sort_values(KEY).reset_index(drop=True)


def _assert_same_report(folder: Path, reference: Path) -> None:
    got, want = _table(folder), _table(reference)
    assert len(want) > 0
    pd.testing.assert_frame_equal(got[KEY + ["runs"]], want[KEY + ["runs"]])
    np.testing.assert_allclose(got[NUMERIC].to_numpy(float), want[NUMERIC].to_numpy(float),
                               rtol=0, atol=ATOL, equal_nan=True)
    status = json.loads((folder / "status.json").read_text())
    assert status["runs"] == 2 and status["failed"] == 0
    assert json.loads((folder / "missing.json").read_text()) == []


@pytest.fixture(scope="module")
def sequential(breakhis_root, tmp_path_factory):
    """The reference: the usual `reproduce`, every run in this process one after another."""
    out = tmp_path_factory.mktemp("sequential") / "ernet-depth"
    train_and_report(make_tiny_experiment(), breakhis_root, out, quick=True, log=lambda _: None)
    return out


def test_workers_2_on_cpu_give_the_sequential_report(sequential, breakhis_root, tmp_path, capsys):
    plan_study(make_tiny_experiment(), breakhis_root, tmp_path, quick=True)
    assert main(["reproduce", "ernet-depth", "--out", str(tmp_path), "--workers", "2"]) == 0
    folder = tmp_path / "ernet-depth"
    _assert_same_report(folder, sequential)
    logs = sorted((folder / "logs").glob("*.log"))
    assert len(logs) == 2
    pids = {line.split(" pid ")[1].split()[0] for log in logs for line in log.read_text().splitlines()
            if " pid " in line}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two processes of their own


def test_slurm_template_run_locally_then_collect_gives_the_same_report(sequential, breakhis_root,
                                                                       tmp_path):
    study = plan_study(make_tiny_experiment(), breakhis_root, tmp_path, quick=True)
    for task in range(len(study["runs"])):  # what `sbatch --array=0-1` runs, one after another
        env = dict(_env(), SLURM_ARRAY_TASK_ID=str(task))
        proc = subprocess.run(["bash", str(slurm_template()), "ernet-depth", str(tmp_path)],
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert main(["reproduce", "ernet-depth", "--out", str(tmp_path), "--collect"]) == 0
    _assert_same_report(tmp_path / "ernet-depth", sequential)


def _wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the first worker ended (status {proc.returncode}) before {what}")
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


EPOCHS = 10


def test_second_run_of_a_claimed_run_skips_it_and_a_killed_run_resumes(breakhis_root, tmp_path):
    # tinycnn epochs take a fraction of a second: 10 of them leave seconds between the first
    # epoch's backup and the end of training, for the kill below to land in.
    study = plan_study(make_tiny_experiment(epochs=EPOCHS), breakhis_root, tmp_path, quick=True,
                       protocols=["ernet"])
    entry = study["runs"][0]
    run_dir = Path(entry["run_dir"])
    cmd = [sys.executable, "-m", "breastcam", "reproduce", "ernet-depth", "--out", str(tmp_path),
           "--run", entry["id"]]
    first = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: (run_dir / LOCK_NAME).exists(), "claiming the run", first)
        second = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
        assert second.returncode != 0
        assert "is claimed by pid" in second.stderr and str(first.pid) in second.stderr
        metadata = run_dir / "backup" / "training_metadata.json"
        _wait_for(metadata.exists, "its first epoch", first)  # BackupAndRestore state exists
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    status = run_dir / "status.json"
    assert not status.exists(), "the run finished before it could be killed; cannot test resume"
    assert (run_dir / LOCK_NAME).exists()  # a SIGKILLed worker cannot release its claim
    epochs_done = json.loads(metadata.read_text())["epoch"]
    assert 1 <= epochs_done < EPOCHS
    third = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"process {first.pid}" in third.stdout and "no longer exists" in third.stdout
    assert f"resuming after epoch {epochs_done}" in third.stdout
    assert json.loads(status.read_text())["state"] == "finished"
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == list(range(EPOCHS))  # every epoch once: resumed, not restarted
    assert not (run_dir / LOCK_NAME).exists()  # released on finish
    assert (run_dir / "metrics.json").is_file()
