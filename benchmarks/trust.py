"""Benchmark: fitting a run's calibration (issue: 10,000 validation predictions in under a second).

Times what ``breastcam calibrate`` does after predicting: the seeded stratified halves, the
temperature fit (bounded scalar search of the NLL), the conformal threshold (LAC and APS) and the
sets of the other half, on 10,000 synthetic 2-, 3- and 4-class predictions. Median of 5 rounds.

    python benchmarks/trust.py [--n 10000] [--out reports/benchmarks/trust.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "trust.md"))
    args = parser.parse_args()

    import numpy as np

    from _report import write_report
    from breastcam.evaluate import trust
    from breastcam.evaluate.calibrate_run import _halves

    rows = []
    for k in (2, 3, 4):
        rng = np.random.default_rng(k)
        logits = rng.normal(size=(args.n, k)) * 3
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        y = (p.cumsum(1) < rng.random((args.n, 1))).sum(1).clip(0, k - 1)
        for score in ("lac", "aps"):
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                a, b = _halves(y, 0)
                t = trust.fit_temperature(y[a], p[a])
                cal = trust.apply_temperature(p, t)
                q = trust.conformal_threshold(y[b], cal[b], 0.1, score)
                sets = trust.prediction_sets(cal[b], q, score)
                times.append(time.perf_counter() - t0)
            cover = sets[np.arange(len(b)), y[b]].mean()
            rows.append(f"| {k} | {score} | {statistics.median(times) * 1000:.0f} | {t:.3f} | {cover:.3f} |")
    load = os.getloadavg()
    lines = ["# Calibration fit time", "",
             f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, "
             f"load {load[0]:.1f}; `python benchmarks/trust.py --n {args.n}`. {args.n:,} synthetic validation "
             "predictions (labels drawn from the probabilities themselves, so a temperature near 1 and "
             "coverage near 0.9 are expected); halves, temperature, conformal threshold and the sets of "
             f"the second half; median of {args.rounds} rounds. Goal: under 1 s.", "",
             "| classes | score | ms | temperature | coverage of the held-out half (alpha 0.1) |",
             "|---|---|---|---|---|", *rows, ""]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
