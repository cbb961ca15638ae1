"""Benchmark: test-time augmentation with K = 8 against eight batched forward passes (issue goal
<= 1.1x).

DALAResNet50 (2 classes, 112 px, random weights), 8 BreakHis sample images: ``evaluate
--uncertainty tta:8``'s step (:class:`breastcam.evaluate.uncertainty.TestTimeAugmentation`: the
image + 7 augmented views through the network as one 64-image batch) against the network alone
on the same 64 images already made. Median of 5 interleaved rounds after a warm-up.

    python benchmarks/tta.py [--data ../shared/data/breakhis] [--out reports/benchmarks/tta.md]
"""

from __future__ import annotations

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

from _report import benchmark_parser  # noqa: E402


def main() -> None:
    parser = benchmark_parser(__doc__, "tta")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    args = parser.parse_args()

    import keras

    from _report import write_report
    from breastcam import models
    from breastcam.evaluate.uncertainty import TestTimeAugmentation
    from breastcam.runs import TrainedModel

    keras.utils.set_random_seed(0)
    net = models.build("dalaresnet50", 2, (args.size, args.size, 3), weights=None)
    trained = TrainedModel(net, ["benign", "malignant"], (args.size, args.size), "minus_one_one")
    pixels = trained.read(sorted(Path(args.data).rglob("*.png"))[:8])
    tta = TestTimeAugmentation(trained, args.k, "dala", seed=0)
    views = tta.views(pixels).numpy()
    tta.predict_on_batch(pixels)
    trained.predict_on_batch(views)
    t_tta, t_net = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        tta.predict_on_batch(pixels)
        t_tta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        trained.predict_on_batch(views)
        t_net.append(time.perf_counter() - t0)
    ratio = statistics.median([a / b for a, b in zip(t_tta, t_net)])
    load = os.getloadavg()
    lines = ["# Test-time augmentation cost", "",
             f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, "
             f"load {load[0]:.1f}; `python benchmarks/tta.py`. DALAResNet50, {args.size} px, 8 images, K = {args.k}: "
             f"{8 * args.k} network inputs per step. Median of {args.rounds} interleaved rounds.", "",
             "| what | median s |", "|---|---|",
             f"| TTA step: views (augmentation) + one batched forward pass + mean | {statistics.median(t_tta):.3f} |",
             f"| the forward pass alone on the same {8 * args.k} views | {statistics.median(t_net):.3f} |", "",
             f"**TTA costs {ratio:.2f}x the {args.k} batched forward passes** (goal <= 1.1x).", ""]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
