"""Wall time of one quick study run sequentially vs with ``--workers N`` on this machine.

    python benchmarks/scale.py [--experiment ernet-depth] [--models ernet18] [--workers 2]
        [--data-dir ../shared/data/breakhis] [--out reports/benchmarks/scale.md]

Both are one ``breastcam reproduce ... --quick`` command from a fresh output folder, timed from
outside (process start-up, planning, training, evaluation and the report included), and their
reports are compared. The load average before and after is recorded: on a shared machine it
says more about the numbers than the numbers do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["dataset", "subset", "protocol", "model", "metric"]


def timed(cmd: list[str]) -> tuple[float, tuple[float, float, float], tuple[float, float, float]]:
    before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, before, os.getloadavg()


def same_report(a: Path, b: Path) -> float:
    """Largest absolute difference between the two reproduced tables' values."""
    ta = pd.read_csv(a / "reproduced.csv").sort_values(KEY).reset_index(drop=True)
    tb = pd.read_csv(b / "reproduced.csv").sort_values(KEY).reset_index(drop=True)
    assert ta[KEY].astype(str).equals(tb[KEY].astype(str)), "different report rows"
    return float(np.nanmax(np.abs(ta["value"].to_numpy(float) - tb["value"].to_numpy(float))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="ernet-depth")
    ap.add_argument("--models", default="ernet18")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data-dir", default="../shared/data/breakhis")
    ap.add_argument("--out", default="reports/benchmarks/scale.md")
    args = ap.parse_args()

    base = [sys.executable, "-m", "breastcam", "reproduce", args.experiment, "--data-dir",
            args.data_dir, "--quick", "--models", *args.models.split(",")]
    work = Path(tempfile.mkdtemp(prefix="breastcam-scale-"))
    try:
        seq = timed(base + ["--out", str(work / "sequential")])
        print(f"sequential: {seq[0]:.0f} s, load {seq[1]} -> {seq[2]}", flush=True)
        par = timed(base + ["--out", str(work / "workers"), "--workers", str(args.workers)])
        print(f"--workers {args.workers}: {par[0]:.0f} s, load {par[1]} -> {par[2]}", flush=True)
        diff = same_report(work / "sequential" / args.experiment,
                           work / "workers" / args.experiment)
        runs = len(json.loads((work / "workers" / args.experiment / "plan.json").read_text())["runs"])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def load(t):
        return " / ".join(f"{x:.1f}" for x in t)

    lines = [
        "# Study scaling: sequential vs `--workers` (benchmarks/scale.py)",
        "",
        f"- date: {dt.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {platform.platform()}, {os.cpu_count()} CPU cores, no GPU",
        f"- study: `breastcam reproduce {args.experiment} --quick --models {args.models}` "
        f"({runs} runs), each mode one command from a fresh folder (start-up, planning, training,"
        " evaluation, report)",
        f"- largest difference between the two reports' values: {diff:.2g}",
        "",
        "| mode | wall s | load average before (1/5/15 min) | after |",
        "|---|---|---|---|",
        f"| sequential | {seq[0]:.0f} | {load(seq[1])} | {load(seq[2])} |",
        f"| --workers {args.workers} | {par[0]:.0f} | {load(par[1])} | {load(par[2])} |",
        "",
        f"Speed-up: {seq[0] / par[0]:.2f}x.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
