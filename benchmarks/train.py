"""Training throughput per model at its paper input size, on whatever device is present.

    python benchmarks/train.py [--models a,b] [--steps 5] [--batch-size N] [--out reports/benchmarks/train.md]

Times ``model.fit`` steps (after a warm-up that includes tracing) on an in-memory batch, so the
number is the model's own cost, not the input pipeline's. The same script run on a GPU machine
gives the per-epoch times behind the papers' convergence-time tables: seconds per epoch =
training images / (img/s).
"""

from __future__ import annotations

import argparse
import os
import datetime as dt
import platform
import statistics
import time

import numpy as np
import tensorflow as tf

from breastcam import models
from _report import write_report  # benchmarks/ is on sys.path when run as a script

# Paper protocol per model: (batch size, trainable note); input size comes from the registry.
DEFAULT_MODELS = ["resnet50", "dalaresnet50", "ernet50", "resnet50_frozen10"]
PAPER_BATCH = {"ernet18": 16, "ernet34": 16, "ernet50": 16, "ernet101": 16, "resnet50_frozen10": 16}
# Training-set sizes behind the papers' per-epoch times (paper 001 Table VI, BreakHis 40X).
TRAIN_IMAGES = {"BreakHis 40X (6:1:3)": 1197}


def time_model(name: str, steps: int, batch_size: int | None, jit: bool) -> dict:
    spec = models.spec(name)
    bs = batch_size or PAPER_BATCH.get(name, 32)
    model = models.build(name, num_classes=2, input_shape=spec.input_shape, weights=None)
    model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(bs, *spec.input_shape)).astype("float32")
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, size=bs)]
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # warm-up: trace + first steps
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        times.append(time.perf_counter() - t0)
    per_step = statistics.median(times) / steps
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    return {
        "model": name,
        "input": "x".join(map(str, spec.input_shape[:2])),
        "batch": bs,
        "trainable_params": trainable,
        "img_per_s": bs / per_step,
        "s_per_epoch_breakhis40x": TRAIN_IMAGES["BreakHis 40X (6:1:3)"] / (bs / per_step),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--jit", action="store_true", help="compile with XLA (jit_compile=True)")
    ap.add_argument("--out", default="reports/benchmarks/train.md")
    args = ap.parse_args()

    load_before = os.getloadavg()
    rows = [time_model(n.strip(), args.steps, args.batch_size, args.jit) for n in args.models.split(",")]
    load_after = os.getloadavg()
    devices = [d.name for d in tf.config.list_logical_devices()]
    lines = [
        "# Training throughput (benchmarks/train.py)",
        "",
        f"- date: {dt.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {platform.processor() or platform.platform()}, devices: {devices}",
        f"- TensorFlow {tf.__version__}; weights=None; median of 3 timed fits of {args.steps} steps after a warm-up; XLA: {args.jit}",
        f"- load average (1/5/15 min) before {'/'.join(f'{v:.2f}' for v in load_before)}, after "
        f"{'/'.join(f'{v:.2f}' for v in load_after)}: other work on the same cores slows every row",
        "",
        "| model | input | batch | trainable params | img/s | s/epoch on BreakHis 40X train (1,197 img) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['input']} | {r['batch']} | {r['trainable_params']:,} | "
            f"{r['img_per_s']:.1f} | {r['s_per_epoch_breakhis40x']:.0f} |"
        )
    lines += [
        "",
        "Paper 000 Table 7 reports 2,133 s of convergence time for DALAResNet50 on BreakHis 40X "
        "(RTX A4000): compare with s/epoch x epochs-to-best measured on a GPU with this script.",
    ]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
