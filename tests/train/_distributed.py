"""Shared pieces of the distribution tests: a tiny study split and a subprocess trainer.

Each training runs in its own process: logical CPU devices and ``TF_CONFIG`` must be set before
TensorFlow initialises, and a multi-worker job is several processes by nature.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from breastcam.data import make_split, make_synthetic, write_split

TRAIN_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import tensorflow as tf
    devices = int(sys.argv[2])
    if devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    import keras
    from breastcam.train import run

    class KillAt(keras.callbacks.Callback):  # SIGKILL this process at the start of an epoch
        def __init__(self, epoch):
            super().__init__()
            self.kill_epoch = epoch
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.kill_epoch:
                os.kill(os.getpid(), 9)

    kill = int(os.environ.get("BREASTCAM_TEST_KILL_EPOCH", "-1"))
    run(json.loads(sys.argv[1]), callbacks=[KillAt(kill)] if kill >= 0 else [], verbose=0)
    """
)


def tiny_study(root: Path) -> tuple[Path, Path]:
    """A 32-image synthetic set split by patient; returns (split csv, data root)."""
    df = make_synthetic(root / "data", n_patients=8, images_per_patient=4, image_size=(48, 48), seed=0)
    path = root / "split.csv"
    write_split(make_split(df, "dala", group="patient", seed=0), path)
    return path, root / "data"


def config(out: Path, split_csv: Path, data_root: Path, *, distribute: str, epochs: int = 2, **train) -> dict:
    return {
        "name": "dist-test",
        "output_dir": str(out),
        "seed": 0,
        "data": {"manifest": str(split_csv), "root": str(data_root), "image_size": 32, "cache": "memory"},
        # dropout off: replicas draw their own dropout masks, which no one-device run can match
        "model": {"name": "tinycnn", "weights": None, "options": {"dropout": 0.0}},
        "train": {"batch_size": 8, "epochs": epochs, "distribute": distribute,
                  "optimizer": {"name": "adam", "learning_rate": 1e-2}, **train},
    }


def start(cfg: dict, devices: int = 1, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, json.dumps(cfg), str(devices)],
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_workers(cfg: dict, n: int = 2, env: dict | None = None) -> list[subprocess.Popen]:
    """``n`` local worker processes of one multi-worker job (TF_CONFIG on 127.0.0.1 ports)."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(n)]}
    return [
        start(cfg, 1, {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                       **(env or {})})
        for i in range(n)
    ]


def finish(procs: list[subprocess.Popen], timeout: float = 400) -> None:
    """Wait for every process; on a failure or time-out kill the rest and fail with its output."""
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-4000:]


def train(cfg: dict, devices: int = 1, timeout: float = 300) -> Path:
    proc = start(cfg, devices)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return Path(cfg["output_dir"])


def losses(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "history.csv")[["epoch", "loss", "val_loss"]]
