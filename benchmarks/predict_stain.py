"""Benchmark: predicting from an exported SavedModel with the run's Macenko normaliser in the
graph, against the same model without it (issue: in-graph stain <= 1.3x the plain forward pass).

ERNet-50 (2 classes, 224 px, random weights: the cost does not depend on the values) exported
twice from one network: with a Macenko normaliser fitted on a BreakHis image, and without.
Batch 32 of the shared BreakHis sample's raw 700 x 460 PNGs (the 20 images, repeated), decoded
once; the signature resizes in the graph. Rounds interleave the two models after one warm-up
call each; the report gives medians, the median per-round ratio, and the normaliser alone on
the same resized batch. Then what a user meets: the whole ``breastcam predict SAVEDMODEL
IMAGES`` command (start-up, loading, decoding and tracing included), once per model.

    python benchmarks/predict_stain.py [--data ../shared/data/breakhis] [--rounds 5]
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _report import benchmark_parser  # noqa: E402


def main() -> None:
    parser = benchmark_parser(__doc__, "predict_stain")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from _report import write_report
    from breastcam import models
    from breastcam.data.decode import read_image
    from breastcam.export import export_trained
    from breastcam.runs import TrainedModel
    from breastcam.stain import Macenko

    paths = sorted(Path(args.data).rglob("*.png"))
    images = [read_image(p) for p in paths]
    shape = images[0].shape
    same = [im for im in images if im.shape == shape]
    batch = np.stack([same[i % len(same)] for i in range(args.batch)]).astype(np.float32)
    keras.utils.set_random_seed(0)
    net = models.build("ernet50", 2, (224, 224, 3), weights=None)
    stain = Macenko().fit(images[0])
    tmp = Path(tempfile.mkdtemp())
    with_stain = TrainedModel(net, ["benign", "malignant"], (224, 224), "minus_one_one", stain=stain)
    plain = TrainedModel(net, ["benign", "malignant"], (224, 224), "minus_one_one")
    t0 = time.perf_counter()
    export_trained(with_stain, tmp / "stain")
    export_trained(plain, tmp / "plain")
    export_s = time.perf_counter() - t0
    fns = {name: tf.saved_model.load(str(tmp / name)).signatures["serving_default"] for name in ("stain", "plain")}
    x = tf.constant(batch)
    resized = with_stain.resize(x)
    normaliser = Macenko(jit_compile=False).fit(images[0])
    normaliser.counting = False
    alone = tf.function(lambda px: normaliser.transform(tf.cast(px, tf.uint8)))
    for fn in fns.values():
        fn(images=x)
    alone(resized)
    times = {"stain": [], "plain": [], "normaliser alone": []}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(images=x)["probabilities"].numpy()
            times[name].append(time.perf_counter() - t)
        t = time.perf_counter()
        alone(resized).numpy()
        times["normaliser alone"].append(time.perf_counter() - t)
    ratios = [s / p for s, p in zip(times["stain"], times["plain"])]

    cli = {}
    files = [str(p) for p in paths]
    for name in ("stain", "plain"):
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "breastcam.cli", "predict", str(tmp / name), *files,
                               "--out", str(tmp / f"pred_{name}"), "--quiet"], capture_output=True, text=True,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        cli[name] = (time.perf_counter() - t, done.returncode)

    load = os.getloadavg()
    lines = [
        "# Predict from a SavedModel: in-graph Macenko vs the plain forward pass",
        "",
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f}; TensorFlow {tf.__version__}, "
        f"`python benchmarks/predict_stain.py --rounds {args.rounds}`.",
        "",
        f"ERNet-50, 224 px, batch {args.batch} of raw {shape[1]} x {shape[0]} BreakHis PNGs "
        f"({len(same)} distinct images, repeated); the signature resizes, normalises (or not), "
        f"preprocesses and runs the network. Median of {args.rounds} interleaved rounds after a warm-up.",
        "",
        "| what | median s per batch | images/s |",
        "|---|---|---|",
    ]
    for name, label in (("plain", "SavedModel, no stain (the plain forward pass + resize)"),
                        ("stain", "SavedModel, Macenko in the graph"),
                        ("normaliser alone", "the Macenko normaliser alone on the resized batch (no XLA)")):
        med = statistics.median(times[name])
        lines.append(f"| {label} | {med:.3f} | {args.batch / med:.1f} |")
    lines += [
        "",
        f"**In-graph stain costs {statistics.median(ratios):.2f}x the plain forward pass** "
        f"(median of the per-round ratios; goal <= 1.3x).",
        "",
        f"What a user meets, the whole `breastcam predict SAVEDMODEL` command on the {len(files)} sample "
        "files (process start, TensorFlow import, SavedModel load, decode, tracing, CSV):",
        "",
        "| model | seconds | exit |",
        "|---|---|---|",
        *(f"| {name} | {cli[name][0]:.1f} | {cli[name][1]} |" for name in ("plain", "stain")),
        "",
        f"Both exports took {export_s:.1f} s together (each verified by running it at export time).",
    ]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
