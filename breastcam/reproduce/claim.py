"""Claim a run directory so that two workers never write one run.

A worker claims a run by creating ``<run_dir>/claim.lock`` with ``os.open(O_CREAT | O_EXCL)``:
the one atomic "create if absent" every local and network filesystem (NFSv3+, Lustre, GPFS)
honours. The file says who holds it (host, pid, start time, a random token). While the claim is
held a heartbeat thread touches the file, so its modification time says the holder is alive.

A claim is *stale*, and the next worker takes it over, when its holder is a process on this host
that no longer exists (``kill -9``, an out-of-memory kill, a crashed node rebooted), or when its
heartbeat is older than ``stale_after`` seconds (a holder on another host that died; the only
evidence there is the clock, so cluster nodes need synchronised clocks, which they have). The
run then resumes from its ``BackupAndRestore`` state. Taking over is itself serialised by a second
``O_EXCL`` file, so two workers that find the same stale claim cannot both take it, and the
stale lock is replaced by the new claim in one ``os.replace`` (never removed first), so a third
worker cannot slip a fresh claim in between.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path

from breastcam.errors import RunStateError

LOCK_NAME = "claim.lock"
STALE_AFTER_S = 900.0  # no heartbeat for 15 minutes: the holder is gone
TAKEOVER_STALE_S = 60.0  # a takeover takes milliseconds; an older takeover file is debris


@dataclasses.dataclass
class Claim:
    """A held claim: release it (or use it as a context manager) when the run ends."""

    path: Path
    info: dict
    took_over: str | None = None  # why an earlier holder's claim was stale, if one was taken
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)
    _beat: threading.Thread | None = dataclasses.field(default=None, repr=False)

    def start_heartbeat(self, interval: float) -> None:
        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    os.utime(self.path)
                except FileNotFoundError:  # released or removed by hand: nothing left to keep
                    return

        self._beat = threading.Thread(target=beat, name=f"heartbeat {self.path}", daemon=True)
        self._beat.start()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it is still this claim's."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if read_claim(self.path).get("token") == self.info["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_claim(path: Path) -> dict:
    """The holder recorded in a lock file (``{}`` when there is none or it is being written)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def stale_reason(path: Path, info: dict, stale_after: float = STALE_AFTER_S) -> str | None:
    """Why the claim in ``path`` no longer holds (``None``: its holder may still be running)."""
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        if not _pid_alive(info["pid"]):
            return f"its process {info['pid']} on {info['host']} no longer exists"
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return "it was released"
    if age > stale_after:
        return f"no heartbeat for {age:.0f} s (more than {stale_after:.0f} s)"
    return None  # alive, or (empty info) its holder is writing it this very moment


def describe(info: dict) -> str:
    if not info:
        return "another worker (its lock file is being written)"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('started')}"


def _create(path: Path, label: str) -> dict | None:
    """Create the lock file atomically; ``None`` when it exists already."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    info = _new_info(label)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    return info


def _new_info(label: str) -> dict:
    return {"run": label, "host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "token": secrets.token_hex(8)}


def _take_over(path: Path, seen: dict, label: str) -> dict | None:
    """Replace a stale lock by this worker's claim under a takeover lock, only if it is still the
    one judged stale. The lock file never disappears on the way (``os.replace``), so no other
    worker can create a fresh lock between the stale one's removal and this claim."""
    guard = path.with_name(path.name + ".takeover")
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - guard.stat().st_mtime > TAKEOVER_STALE_S:
                guard.unlink(missing_ok=True)  # left by a worker killed mid-takeover
        except FileNotFoundError:
            pass
        return None
    try:
        os.close(fd)
        if read_claim(path) != seen:
            return None
        info = _new_info(label)
        staged = path.with_name(f"{path.name}.{info['token']}")
        staged.write_text(json.dumps(info))
        os.replace(staged, path)
        return info
    finally:
        guard.unlink(missing_ok=True)


def claim_run(run_dir: str | Path, label: str = "", *, stale_after: float = STALE_AFTER_S,
              heartbeat: float | None = None) -> Claim:
    """Claim ``run_dir`` for this process or raise :class:`RunStateError` if another holds it.

    A stale claim (see the module docstring) is taken over; :attr:`Claim.took_over` says why.
    ``heartbeat`` is the seconds between touches of the lock (default ``stale_after / 10``).
    """
    if stale_after <= 0:
        raise ValueError(f"stale_after must be > 0 seconds, got {stale_after!r}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    label = label or str(run_dir)
    for _ in range(5):  # each pass creates the lock, takes a stale one over, or waits
        info = _create(path, label)
        if info is not None:
            claim = Claim(path, info)
            claim.start_heartbeat(heartbeat or min(60.0, stale_after / 10))
            return claim
        seen = read_claim(path)
        why = stale_reason(path, seen, stale_after)
        if why is None:
            raise RunStateError(
                f"run {label} is claimed by {describe(seen)} (lock {path}): another worker is "
                f"running it, so this one skips it. If that worker is gone for good, its claim "
                f"counts as stale after {stale_after:.0f} s without heartbeat, or delete {path}")
        info = _take_over(path, seen, label)
        if info is not None:
            claim = Claim(path, info, f"took over the stale claim of {describe(seen)}: {why}")
            claim.start_heartbeat(heartbeat or min(60.0, stale_after / 10))
            return claim
        time.sleep(0.05)  # another worker is taking it over right now
    raise RunStateError(f"run {label}: could not claim {path}; other workers keep taking it over")
