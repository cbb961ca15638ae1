"""Input-pipeline throughput: breastcam's ``make_dataset`` against Keras's ImageDataGenerator.

PNG files -> normalised ([-1, 1]) 224x224 float32 batches of 32. The 20 BreakHis PNGs of the
shared data (700x460) repeated to 640 entries; each path is warmed up for one epoch, then timed
over ``--runs`` epochs; the table gives the median in images per second and the ratio to
``ImageDataGenerator.flow_from_dataframe`` (the peer, in Keras 3 reachable only as
``tf.keras.preprocessing.image``, i.e. ``keras.src.legacy``).

    python benchmarks/pipeline.py            # writes reports/benchmarks/pipeline.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from breastcam.data.pipeline import make_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = (224, 224)
BATCH = 32


def _timed_epoch(batches) -> float:
    """Seconds to pull every batch of one epoch (an iterable of batches)."""
    start = time.perf_counter()
    for _ in batches:
        pass
    return time.perf_counter() - start


def _median_rate(entries: int, seconds: list[float]) -> float:
    return entries / statistics.median(seconds)


def bench_image_data_generator(df: pd.DataFrame, runs: int) -> list[float]:
    generator = tf.keras.preprocessing.image.ImageDataGenerator(
        preprocessing_function=lambda x: x / 127.5 - 1.0
    )

    def epoch():
        it = generator.flow_from_dataframe(
            df, x_col="file", y_col="label", target_size=SIZE, batch_size=BATCH,
            class_mode="sparse", shuffle=False, validate_filenames=False,
        )
        return (it[i] for i in range(len(it)))

    _timed_epoch(epoch())  # warm-up
    return [_timed_epoch(epoch()) for _ in range(runs)]


def bench_plain_tf_data(df: pd.DataFrame, runs: int) -> dict[str, list[float]]:
    """The textbook tf.data pipeline of ANCHORS.md, without and with ``.cache()`` after resize."""

    def load(path, label):
        image = tf.io.decode_png(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, SIZE) / 127.5 - 1.0, label

    decoded = tf.data.Dataset.from_tensor_slices(
        (df["file"].tolist(), df["label_index"].to_numpy())
    ).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    plain = decoded.batch(BATCH).prefetch(tf.data.AUTOTUNE)
    cached = decoded.cache().batch(BATCH).prefetch(tf.data.AUTOTUNE)
    _timed_epoch(plain)
    times = {
        "plain tf.data (decode_png, resize, AUTOTUNE)": [_timed_epoch(plain) for _ in range(runs)]
    }
    _timed_epoch(cached)
    times["plain tf.data, .cache() after resize (float32), epochs 2+"] = [
        _timed_epoch(cached) for _ in range(runs)
    ]
    return times


def bench_breastcam(df: pd.DataFrame, runs: int) -> dict[str, list[float]]:
    kwargs = dict(image_size=SIZE, preprocessing="minus_one_one", batch_size=BATCH)
    manifest = df.rename(columns={"file": "path"})
    times: dict[str, list[float]] = {}

    uncached = make_dataset(manifest, None, **kwargs)
    _timed_epoch(uncached)
    times["breastcam make_dataset, no cache"] = [_timed_epoch(uncached) for _ in range(runs)]

    # First epoch with cache="memory": a fresh dataset each run (the epoch that fills it).
    fills, cached = [], None
    for _ in range(runs):
        cached = make_dataset(manifest, None, cache="memory", **kwargs)
        fills.append(_timed_epoch(cached))
    times['breastcam cache="memory", epoch 1 (fills the cache)'] = fills
    _timed_epoch(cached)
    times['breastcam cache="memory", epochs 2+'] = [_timed_epoch(cached) for _ in range(runs)]

    shuffled = make_dataset(manifest, None, cache="memory", shuffle=True, seed=0, **kwargs)
    _timed_epoch(shuffled)
    _timed_epoch(shuffled)
    times['breastcam cache="memory" + shuffle, epochs 2+'] = [
        _timed_epoch(shuffled) for _ in range(runs)
    ]
    return times


def _machine() -> list[str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB RAM"
    return [
        f"- machine: {cpu}, {os.cpu_count()} CPU cores{memory}, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}, OpenCV {cv2.__version__}, NumPy {np.__version__}, pandas "
        f"{pd.__version__}",
    ]


def write_report(path: Path, rows: list[tuple[str, list[float]]], entries: int, runs: int,
                 files: int, load: tuple[float, float]) -> str:
    baseline = _median_rate(entries, rows[0][1])
    lines = [
        "# Input pipeline benchmark",
        "",
        f"PNG files to normalised ([-1, 1]) {SIZE[0]}x{SIZE[1]} float32 batches of {BATCH}: the "
        f"{files} BreakHis PNGs (700x460) of `../shared/data/breakhis` repeated to {entries} "
        f"entries. Every path is warmed up for one epoch, then timed over {runs} epochs; the table "
        "gives the median.",
        "",
        "| pipeline | img/s (median) | epoch seconds (each run) | x ImageDataGenerator |",
        "|---|---:|---|---:|",
    ]
    for name, seconds in rows:
        rate = _median_rate(entries, seconds)
        each = ", ".join(f"{s:.3f}" for s in seconds)
        lines.append(f"| {name} | {rate:,.0f} | {each} | {rate / baseline:.1f} |")
    lines += [
        "",
        "## Setting",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        *_machine(),
        f"- load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f}. The CPU is "
        "shared with other work on this machine, so absolute numbers are noisy; compare the "
        "ratios, which come from one run of this script.",
        f"- command: `python benchmarks/pipeline.py --entries {entries} --runs {runs}`",
        "",
        "## Notes",
        "",
        "- ImageDataGenerator: `flow_from_dataframe(..., target_size=(224, 224), "
        "class_mode='sparse', shuffle=False)` with `preprocessing_function=x / 127.5 - 1`; it "
        "loads with PIL and resizes with its default `interpolation='nearest'` (no smoothing), "
        "one image at a time in the calling thread.",
        "- plain tf.data: `read_file` -> `decode_png` -> `resize` (bilinear, no antialias) -> "
        "`map(AUTOTUNE)` -> `batch` -> `prefetch`, the reference rows of `ANCHORS.md`; its "
        "cache holds float32 images already normalised, four times the memory of breastcam's "
        "uint8 cache, which pays for a cast and the preprocessing on every cached epoch.",
        "- breastcam: `make_dataset(df, root, image_size=(224, 224), batch_size=32)`: the same "
        "plus format sniffing and truncation checks on the bytes (routing to OpenCV where "
        "TensorFlow cannot decode), antialiased resize rounded to uint8 (what the cache holds), "
        "then the float conversion and preprocessing per image (without `augment`; with it they "
        "run per batch, after the augmentation), then `batch`.",
        "- `cache=\"memory\"`, epoch 1 is the epoch that decodes and fills the cache (a fresh "
        "dataset each run); epochs 2+ replay resized uint8 images from memory.",
        "",
    ]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "breakhis")
    parser.add_argument("--entries", type=int, default=640)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks" / "pipeline.md")
    args = parser.parse_args(argv)

    files = sorted(str(p) for p in args.data.rglob("*.png"))
    if not files:
        parser.error(f"no PNG files under {args.data}")
    chosen = [files[i % len(files)] for i in range(args.entries)]
    labels = ["malignant" if "/malignant/" in f else "benign" for f in chosen]
    df = pd.DataFrame(
        {"file": chosen, "label": labels, "label_index": [int(x == "malignant") for x in labels]}
    )

    load_before = os.getloadavg()[0]
    rows = [("ImageDataGenerator.flow_from_dataframe", bench_image_data_generator(df, args.runs))]
    print(f"{rows[-1][0]}: {_median_rate(args.entries, rows[-1][1]):,.0f} img/s", flush=True)
    for bench in (bench_plain_tf_data, bench_breastcam):
        for name, seconds in bench(df, args.runs).items():
            rows.append((name, seconds))
            print(f"{name}: {_median_rate(args.entries, seconds):,.0f} img/s", flush=True)
    load = (load_before, os.getloadavg()[0])

    print(write_report(args.out, rows, args.entries, args.runs, len(files), load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
