"""Run-directory claims: one holder at a time, stale claims taken over, never two winners."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from breastcam.errors import RunStateError
from breastcam.reproduce.claim import LOCK_NAME, claim_run, read_claim


def _race(run_dir, n=8):
    """``n`` threads claim ``run_dir`` at once; returns (claims won, errors)."""
    barrier = threading.Barrier(n)
    won, errors = [], []

    def one():
        barrier.wait()
        try:
            won.append(claim_run(run_dir, "r"))
        except RunStateError as err:
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, errors


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claim_is_exclusive_and_released(tmp_path):
    run_dir = tmp_path / "run"
    claim = claim_run(run_dir, "all-dala/resnet50/run")
    info = read_claim(run_dir / LOCK_NAME)
    assert info["pid"] == os.getpid() and info["host"] and info["started"]
    with pytest.raises(RunStateError, match="is claimed by pid"):
        claim_run(run_dir, "all-dala/resnet50/run")
    claim.release()
    assert not (run_dir / LOCK_NAME).exists()
    with claim_run(run_dir, "again") as again:  # free again after release
        assert again.took_over is None
    assert not (run_dir / LOCK_NAME).exists()


def test_claim_race_has_one_winner(tmp_path):
    won, errors = _race(tmp_path / "run")
    assert len(won) == 1 and len(errors) == 7
    won[0].release()


def test_dead_holder_on_this_host_is_taken_over_once(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = {"run": "r", "host": socket.gethostname(), "pid": _dead_pid(),
             "started": "earlier", "token": "old"}
    (run_dir / LOCK_NAME).write_text(json.dumps(stale))
    won, errors = _race(run_dir)  # all find the same stale claim: exactly one takes it
    assert len(won) == 1 and len(errors) == 7
    assert "no longer exists" in won[0].took_over
    assert read_claim(run_dir / LOCK_NAME)["pid"] == os.getpid()
    won[0].release()


def test_claim_of_another_host_counts_until_its_heartbeat_is_old(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lock = run_dir / LOCK_NAME
    lock.write_text(json.dumps({"run": "r", "host": "node-that-is-not-this-one", "pid": 1,
                                "started": "earlier", "token": "old"}))
    with pytest.raises(RunStateError, match="node-that-is-not-this-one"):
        claim_run(run_dir, "r", stale_after=60)
    old = time.time() - 120
    os.utime(lock, (old, old))
    with claim_run(run_dir, "r", stale_after=60) as claim:
        assert "no heartbeat for" in claim.took_over


def test_heartbeat_keeps_the_claim_fresh_and_release_spares_other_claims(tmp_path):
    run_dir = tmp_path / "run"
    claim = claim_run(run_dir, "r", stale_after=60, heartbeat=0.05)
    lock = run_dir / LOCK_NAME
    old = time.time() - 3600
    os.utime(lock, (old, old))
    deadline = time.time() + 10
    while lock.stat().st_mtime < time.time() - 60 and time.time() < deadline:
        time.sleep(0.05)
    assert lock.stat().st_mtime > time.time() - 60  # touched again by the heartbeat
    lock.write_text(json.dumps({"token": "someone else"}))  # e.g. taken over meanwhile
    claim.release()
    assert lock.exists()  # not ours any more: left alone
