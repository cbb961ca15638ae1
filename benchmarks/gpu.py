"""GPU readiness: one prepared run of paper A's BreakHis 40X training at full size (<= 8 min).

    python benchmarks/gpu.py [--out reports/benchmarks/gpu.md]      # on a GPU machine
    python benchmarks/gpu.py --tiny --out /tmp/gpu.md               # CI: a few seconds on CPU

Writes a synthetic BreakHis-40X-sized set (1,995 PNGs of 700x460 -> 1,197 training images
under paper A's 6:1:3 split, as paper 001 Table VI), trains DALAResNet50 at 224 px through
``breastcam.train.run`` - the real pipeline: decode, resize, memory cache, mixed precision,
XLA - for a few epochs, then times Grad-CAM and DT Grad-CAM v2 on the GPU. Reports img/s,
s/epoch (the first epoch separately: it decodes and traces), peak GPU memory, and the
projected 50-epoch time beside paper 000 Table 7's 2,133 s (RTX A4000).

Goal (issue 13): 50 epochs of BreakHis 40X in <= 120 s on one H100-class GPU.
``--tiny`` runs the same code at 32 px on 24 images for one epoch so the script cannot rot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from breastcam.data import make_split, make_synthetic, write_split
from breastcam.explain import get_cam
from breastcam.train import run
from _report import write_report  # benchmarks/ is on sys.path when run as a script

PAPER_SECONDS = 2133  # paper 000 Table 7: DALAResNet50 convergence time on BreakHis 40X, RTX A4000
GOAL_SECONDS = 120  # issue 13: 50 epochs on one H100-class GPU
FULL = {"patients": 105, "per_patient": 19, "image": (460, 700), "size": 224, "epochs": 3, "batch": 32,
        "cam_images": 256, "mixed_precision": True, "xla": True}
# Tiny: float32 and no XLA - compiling ResNet50 with XLA, or emulating bfloat16, takes minutes on
# a 2-core CPU without AVX512-BF16; the point of tiny mode is that every line of the script runs.
TINY = {"patients": 4, "per_patient": 6, "image": (48, 64), "size": 32, "epochs": 2, "batch": 8,
        "cam_images": 8, "mixed_precision": False, "xla": False}


def _peak_gpu_mib() -> float | None:
    if not tf.config.list_logical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def _cam_rate(model: keras.Model, method: str, images: np.ndarray, **params) -> float:
    cam = get_cam(method, model, batch_size=32, **params)
    cam(images[:8])  # trace
    t0 = time.perf_counter()
    cam(images)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU smoke mode (CI)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", default="reports/benchmarks/gpu.md")
    args = ap.parse_args()
    p = TINY if args.tiny else FULL
    work = Path(args.work or tempfile.mkdtemp(prefix="breastcam-gpu-"))

    t0 = time.perf_counter()
    df = make_synthetic(work / "data", n_patients=p["patients"], images_per_patient=p["per_patient"],
                        image_size=p["image"], seed=0)
    write_split(make_split(df, "dala", seed=0), work / "split.csv", force=True)
    n_train = int((pd.read_csv(work / "split.csv")["split"] == "train").sum())
    synth_s = time.perf_counter() - t0

    run_dir = run({
        "output_dir": str(work / "run"),
        "data": {"manifest": str(work / "split.csv"), "root": str(work / "data"),
                 "image_size": p["size"], "cache": "memory", "augmentation": "dala"},
        "model": {"name": "dalaresnet50", "weights": None},
        "train": {"batch_size": p["batch"], "epochs": p["epochs"], "mixed_precision": p["mixed_precision"],
                  "jit_compile": p["xla"], "deterministic": False},
    }, verbose=2)
    timing = json.loads((run_dir / "timing.json").read_text())
    info = json.loads((run_dir / "run_info.json").read_text())
    epoch_s = [float(v) for v in timing.get("epoch_seconds", [])]
    steady = float(np.median(epoch_s[1:])) if len(epoch_s) > 1 else float(epoch_s[0])
    peak_train = _peak_gpu_mib()

    model = keras.saving.load_model(run_dir / "best.keras", safe_mode=True)
    images = np.random.default_rng(0).uniform(-1, 1, (p["cam_images"], p["size"], p["size"], 3)).astype("float32")
    gradcam = _cam_rate(model, "gradcam", images)
    dtgradcam = _cam_rate(model, "dtgradcam", images, version=2)

    device = [d.name for d in tf.config.list_logical_devices("GPU")] or ["CPU only"]
    try:
        gpu_name = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0]).get("device_name")
    except (IndexError, ValueError):
        gpu_name = None
    projected = epoch_s[0] + 49 * steady
    lines = [
        "# GPU readiness (benchmarks/gpu.py)",
        "",
        f"- date: {dt.datetime.now().isoformat(timespec='seconds')}; mode: {'tiny (CPU smoke)' if args.tiny else 'full'}",
        f"- machine: {platform.machine()} {platform.processor()}; devices: {device} {gpu_name or ''}",
        f"- TensorFlow {tf.__version__}, Keras {keras.__version__}; policy {info.get('precision')}, XLA {'on' if info.get('jit_compile') else 'off'}",
        f"- data: {n_train} training images (synthetic BreakHis-40X-sized set, {p['image'][1]}x{p['image'][0]} PNG, "
        f"written in {synth_s:.0f} s), DALAResNet50 at {p['size']} px, batch {p['batch']}, {p['epochs']} epochs",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| first epoch (decode + cache + trace) | {epoch_s[0]:.1f} s |",
        f"| steady epoch (median of later epochs) | {steady:.1f} s |",
        f"| training throughput (steady) | {n_train / steady:.1f} img/s |",
        f"| peak GPU memory | {'n/a (no GPU)' if peak_train is None else f'{peak_train:,.0f} MiB'} |",
        f"| projected 50 epochs (first + 49 steady) | {projected:.0f} s |",
        f"| paper 000 Table 7 (RTX A4000) | {PAPER_SECONDS} s |",
        f"| goal on one H100-class GPU | <= {GOAL_SECONDS} s: {'met' if projected <= GOAL_SECONDS else 'NOT met'}"
        f"{' (tiny mode: not a measurement of the goal)' if args.tiny else ''} |",
        f"| Grad-CAM throughput | {gradcam:.0f} img/s |",
        f"| DT Grad-CAM v2 throughput (N noisy copies) | {dtgradcam:.1f} img/s |",
    ]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
