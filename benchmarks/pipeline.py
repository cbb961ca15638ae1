"""Input-pipeline throughput: breastcam's ``make_dataset`` against a plain ``tf.data`` pipeline.

1. Uncached epoch, BreakHis PNGs (700x460) -> 224x224 float32 batches of 32 in [-1, 1]: plain
   ``tf.data`` (list -> read_file -> decode_png -> antialiased bilinear resize -> preprocess,
   ``map(AUTOTUNE)`` -> batch -> prefetch) against ``make_dataset(cache=None)`` doing the same
   decode and the same resize. The two alternate epoch by epoch in one process (ABBA order), so
   a machine shared with other work loads both alike; the ratio is the median of the per-round
   ratios.
2. Where the time goes: CPU milliseconds per image of each op, one image at a time.
3. Large decodes: 2048x1536 TIFF (BACH-like), 1024x1024 PGM (MIAS-like) and a mammogram-sized
   JPEG (CDD-CESM-like), from ``breastcam synth --like bach|mias|cddcesm`` trees.
4. Augmented cached epochs (epochs 2+, cache="memory") per recipe, host and device.

    python benchmarks/pipeline.py --synth /tmp/synth   # writes reports/benchmarks/pipeline.md

``--synth DIR`` holds (or receives) the synthetic trees ``DIR/bach``, ``DIR/mias``, ``DIR/cddcesm``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from breastcam.augment import expand_modres, get_recipe, get_recipe_layers  # noqa: E402
from breastcam.data import decode  # noqa: E402
from breastcam.data.pipeline import make_dataset, resize_image  # noqa: E402
from breastcam.data.preprocess import get_preprocessor  # noqa: E402
from breastcam.train.device_augment import DeviceAugmented  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = (224, 224)
BATCH = 32
LARGE = {  # synth tree -> (what it stands for, file pattern)
    "bach": ("2048x1536 RGB TIFF (BACH-like)", "*.tif"),
    "mias": ("1024x1024 grey PGM (MIAS-like)", "*.pgm"),
    "cddcesm": ("2200x1700 grey JPEG (CDD-CESM-like mammogram)", "*.jpg"),
}


def timed(batches, fn=None) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) to pull every batch (through ``fn`` if given)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        if fn is not None:
            fn(batch)
    return time.perf_counter() - wall, time.process_time() - cpu


def plain_tf_data(files: list[str], labels: np.ndarray, antialias: bool = True,
                  deterministic: bool | None = None) -> tf.data.Dataset:
    def load(path, label):
        image = tf.io.decode_png(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, SIZE, antialias=antialias) / 127.5 - 1.0, label

    ds = tf.data.Dataset.from_tensor_slices((files, labels)).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return ds.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def manifest(files: list[str]) -> pd.DataFrame:
    labels = [int("/malignant/" in f) for f in files]
    return pd.DataFrame({"path": files, "label_index": labels,
                         "label": ["malignant" if x else "benign" for x in labels]})


# --- 1. uncached epoch, interleaved -----------------------------------------------------


def bench_uncached(files: list[str], rounds: int) -> dict:
    df = manifest(files)
    pipes = {
        "plain": plain_tf_data(files, df["label_index"].to_numpy()),
        "breastcam": make_dataset(df, None, image_size=SIZE, batch_size=BATCH),
        "plain_noaa": plain_tf_data(files, df["label_index"].to_numpy(), antialias=False),
        "plain_unordered": plain_tf_data(files, df["label_index"].to_numpy(), deterministic=False),
    }
    for ds in pipes.values():  # warm-up: tracing, file cache
        timed(ds.take(3))
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in pipes}
    for r in range(rounds):
        order = ["plain", "breastcam"] if r % 2 == 0 else ["breastcam", "plain"]
        for name in order + ["plain_noaa", "plain_unordered"]:
            runs[name].append(timed(pipes[name]))
            wall, cpu = runs[name][-1]
            print(f"  round {r}: {name}: {len(files) / wall:.1f} img/s, "
                  f"{1000 * cpu / len(files):.2f} CPU ms/img", flush=True)
    ratios = [p[0] / b[0] for p, b in zip(runs["plain"], runs["breastcam"])]
    return {"runs": runs, "ratios": ratios, "entries": len(files)}


# --- 2. where the time goes -------------------------------------------------------------


def op_profile(files: list[str], reps: int = 10) -> list[tuple[str, float]]:
    """CPU ms per image of each step, one image per call, call overhead subtracted."""
    files = files[:8]
    data = [tf.io.read_file(f) for f in files]
    images = [tf.io.decode_png(d, channels=3) for d in data]
    small = [resize_image(x, SIZE) for x in images]
    steps = [
        ("tf.function call overhead (identity)", lambda x: tf.identity(x), data),
        ("read_file", tf.io.read_file, [tf.constant(f) for f in files]),
        ("format/truncation routing (decode._tf_route)", decode._tf_route, data),
        ("decode_png", lambda d: tf.io.decode_png(d, channels=3), data),
        ("decode_tf: read_file + per-file routing (tf.cond) + decode", decode.decode_tf,
         [tf.constant(f) for f in files]),
        ("decode_as(route='png'): read_file + end-marker Assert + decode_png",
         lambda p: decode.decode_as(p, "png"), [tf.constant(f) for f in files]),
        ("resize bilinear, no antialias", lambda x: tf.image.resize(x, SIZE), images),
        ("resize bilinear, antialias", lambda x: tf.image.resize(x, SIZE, antialias=True), images),
        ("round + cast to uint8 (of the resized image)",
         lambda x: tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8),
         [tf.image.resize(x, SIZE, antialias=True) for x in images]),
        ("cast to float + minus_one_one", lambda x: get_preprocessor("minus_one_one")(
            tf.cast(x, tf.float32)), small),
    ]
    out, overhead = [], 0.0
    for name, fn, args in steps:
        f = tf.function(fn)
        for a in args:
            f(a)
        cpu = time.process_time()
        for _ in range(reps):
            for a in args:
                f(a)
        ms = 1000 * (time.process_time() - cpu) / (reps * len(args))
        if not out:
            overhead = ms
        out.append((name, ms if not out else max(ms - overhead, 0.0)))
    return out


# --- 3. large decodes -------------------------------------------------------------------


def bench_large(synth: Path, entries: int) -> list[dict]:
    rows = []
    for tree, (what, pattern) in LARGE.items():
        found = sorted(str(p) for p in (synth / tree).rglob(pattern))
        if not found:
            print(f"  no {pattern} under {synth / tree}: skipped", flush=True)
            continue
        files = [found[i % len(found)] for i in range(entries)]
        df = manifest(files)
        ds = make_dataset(df, None, image_size=SIZE, batch_size=8)
        timed(ds.take(1))
        wall, cpu = timed(ds)
        row = {"what": what, "files": len(found), "entries": entries, "rate": entries / wall,
               "cpu_ms": 1000 * cpu / entries, "mb": np.mean([os.path.getsize(f) for f in found]) / 1e6}
        if pattern == "*.jpg":  # TensorFlow decodes JPEG itself: plain row with the same resize
            def load(path):
                image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
                return tf.image.resize(image, SIZE, antialias=True) / 127.5 - 1.0

            plain = tf.data.Dataset.from_tensor_slices(files).map(
                load, num_parallel_calls=tf.data.AUTOTUNE).batch(8).prefetch(tf.data.AUTOTUNE)
            timed(plain.take(1))
            p_wall, p_cpu = timed(plain)
            row["plain_rate"], row["plain_cpu_ms"] = entries / p_wall, 1000 * p_cpu / entries
        rows.append(row)
        print(f"  {what}: {row['rate']:.1f} img/s, {row['cpu_ms']:.1f} CPU ms/img", flush=True)
    return rows


# --- 4. augmented cached epochs ---------------------------------------------------------


def bench_augmented(files: list[str], epochs: int) -> list[dict]:
    df = manifest(files)
    common = dict(image_size=SIZE, batch_size=BATCH, cache="memory")
    rows = []

    def measure(name: str, where: str, ds, fn=None, note: str = ""):
        timed(ds, fn)  # epoch 1 fills the cache (and traces)
        runs = [timed(ds, fn) for _ in range(epochs)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rows.append({"recipe": name, "where": where, "rate": len(files) / wall, "entries": len(files),
                     "cpu_ms": 1000 * cpu / len(files), "note": note})
        print(f"  {name} ({where}): {rows[-1]['rate']:.0f} img/s", flush=True)

    measure("none", "-", make_dataset(df, None, **common))
    measure("dala", "host", make_dataset(df, None, augment=get_recipe("dala", seed=0), **common))
    raw = make_dataset(df, None, preprocessing="none", output_dtype="uint8", **common)
    wrapper = DeviceAugmented(keras.Sequential([keras.layers.Identity()]),
                              get_recipe_layers("dala", seed=0), "minus_one_one")
    step = tf.function(lambda images: wrapper(images, training=True))
    measure("dala", "device", raw, lambda batch: step(batch[0]),
            note="the training step's augment + preprocess, on this machine's CPU (no accelerator)")
    measure("ernet", "host", make_dataset(df, None, augment=get_recipe("ernet", seed=0), **common),
            note="device: not available (Augmentor step is Python)")
    with tempfile.TemporaryDirectory() as tmp:
        unique = manifest(sorted(set(files)))
        unique["split"] = "train"
        start = time.perf_counter()
        expanded = expand_modres(unique, "/", tmp, seed=0)
        writing = len(unique) / (time.perf_counter() - start)
        copies = [expanded["path"].iloc[i % len(expanded)] for i in range(len(files))]
        measure("modres", "offline", make_dataset(manifest(copies), None, **common),
                note=f"copies written once, {writing:.1f} originals/s (5 copies each); the cached epoch "
                "reads 6x the images, none online")
    return rows


# --- report -----------------------------------------------------------------------------


def _machine() -> list[str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"- machine: {cpu}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__}, OpenCV {cv2.__version__}, NumPy {np.__version__}",
    ]


def _med(values) -> float:
    return statistics.median(values)


def write_report(path: Path, uncached: dict, profile, large, augmented, loads, args) -> str:
    n = uncached["entries"]
    runs = uncached["runs"]
    label = {
        "plain": "plain tf.data: decode_png, antialiased resize, preprocess (AUTOTUNE map)",
        "breastcam": "breastcam make_dataset(cache=None)",
        "plain_noaa": "plain tf.data, resize without antialias (reference only)",
        "plain_unordered": "plain tf.data, map(deterministic=False) (the cost of order)",
    }
    ratio = _med(uncached["ratios"])
    cpu_ratio = _med(c for _, c in runs["plain"]) / _med(c for _, c in runs["breastcam"])
    lines = [
        "# Input pipeline benchmark", "",
        f"**Uncached epoch: breastcam / plain tf.data = {ratio:.2f}x** (median of "
        f"{len(uncached['ratios'])} paired rounds: "
        + ", ".join(f"{r:.2f}" for r in uncached["ratios"]) + "; goal >= 0.9x). "
        f"By CPU work per image (load-insensitive): {cpu_ratio:.2f}x (plain's CPU ms/img over "
        "breastcam's, medians).", "",
        "## 1. Uncached epoch, BreakHis PNG", "",
        f"The {args.files} BreakHis PNGs (700x460) of `{args.data}` repeated to {n} entries -> "
        f"{SIZE[0]}x{SIZE[1]} float32 batches of {BATCH} in [-1, 1]. Each round runs one epoch "
        "of each pipeline back to back, plain and breastcam alternating which goes first (ABBA): "
        "the machine is shared, so the load of a moment hits both; the ratio is taken per round.",
        "",
        "| pipeline | img/s (median) | each round, img/s | CPU ms/img (median) |",
        "|---|---:|---|---:|",
    ]
    for key, name in label.items():
        rates = [n / w for w, _ in runs[key]]
        cpus = [1000 * c / n for _, c in runs[key]]
        lines.append(f"| {name} | {_med(rates):.1f} | {', '.join(f'{x:.1f}' for x in rates)} "
                     f"| {_med(cpus):.2f} |")
    lines += [
        "", "CPU ms/img is process CPU time over images (all threads): it is much less "
        "sensitive to the machine's load than img/s and says how much work each image costs. "
        "On the 2-core VMs measured so far, epoch rates cluster at a few values for every "
        "pipeline whatever its CPU cost per image (e.g. ~94 img/s and about twice that, also "
        "with nothing else running; ~31 img/s under heavy load): the rate is then set by how "
        "the machine grants CPU time, not by the pipeline, which is why single img/s pairs "
        "swing between 0.6x and 1.7x and why the ratio is a median over paired rounds, with "
        "the CPU ms/img ratio beside it.", "",
        "## 2. Where the time goes (CPU ms per image, one 700x460 PNG per call)", "",
        "| step | CPU ms |", "|---|---:|",
    ]
    lines += [f"| {name} | {ms:.3f} |" for name, ms in profile[1:]]
    lines += [
        "", f"(tf.function call overhead, {profile[0][1]:.3f} ms, subtracted from each row.)", "",
        "## 3. Large decodes (uncached make_dataset, batches of 8, to 224x224)", "",
        "| files | distinct files (mean MB) | img/s | CPU ms/img | plain tf.data img/s (CPU ms/img) |",
        "|---|---:|---:|---:|---|",
    ]
    for row in large:
        plain = (f"{row['plain_rate']:.1f} ({row['plain_cpu_ms']:.1f})" if "plain_rate" in row
                 else "- (TensorFlow has no decoder: OpenCV in `tf.numpy_function`)")
        lines.append(f"| {row['what']} | {row['files']} ({row['mb']:.1f}) | {row['rate']:.1f} | "
                     f"{row['cpu_ms']:.1f} | {plain} |")
    if not large:
        lines.append("| (no synthetic trees given: `--synth DIR`) | | | | |")
    lines += [
        "", f"## 4. Augmented cached epochs (cache=\"memory\", epochs 2+, median of {args.epochs})",
        "", f"{augmented[0]['entries'] if augmented else 0} entries of the same PNGs, batches of "
        f"{BATCH}; the host recipes run in `make_dataset`'s augmenting map (sequential: the "
        "augmenters' seeded state advances batch by batch).", "",
        "| recipe | where | img/s | CPU ms/img | note |", "|---|---|---:|---:|---|",
    ]
    lines += [f"| {r['recipe']} | {r['where']} | {r['rate']:.0f} | {r['cpu_ms']:.2f} | {r['note']} |"
              for r in augmented]
    lines += [
        "", "## Setting", "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        *_machine(),
        "- load average (1 min) at start / after section 1 / at the end: "
        + " / ".join(f"{x:.2f}" for x in loads)
        + f" on {os.cpu_count()} cores: "
        + ("no more than the benchmark's own threads" if max(loads) <= os.cpu_count() + 0.5 else
           "the machine was shared with other work, so absolute img/s are low and noisy")
        + "; the ratio of section 1 comes from interleaved epochs in one process and the CPU "
        "ms/img columns are the load-insensitive view.",
        f"- command: `python benchmarks/pipeline.py --entries {n} --rounds {args.rounds} "
        f"--epochs {args.epochs} --synth {args.synth}`", "",
        "## Notes", "",
        "- breastcam's uncached path is one parallel `map` (read, decode, antialiased resize, "
        "round to uint8, cast, preprocess) then `batch`, the shape of the plain pipeline. The "
        "decoder is chosen once per dataset from each file's first 64 bytes when the dataset is "
        "built (`dataset_route`: all PNG -> `decode_png`, all JPEG -> `decode_jpeg`, mixed or "
        "other formats -> the per-file routing of `decode_tf`, a `tf.cond` with the OpenCV "
        "reader in its other branch). Its extra work per image is an end-marker check (an "
        "`Assert` op whose error names a truncated file) and the round to uint8 (what a cache "
        "holds, so cached and uncached epochs feed identical pixels): section 2.",
        "- Before this version: the plain row resized without antialias (the reference row "
        "above: about 2.4 CPU ms/img less) while breastcam's resize is antialiased, the two ran "
        "one after the other rather than interleaved, and breastcam's map held a per-file "
        "`tf.cond` with the OpenCV reader in the other branch, plus a second parallel map for "
        "cast + preprocess: issue 13's 0.49x (124 vs 251 img/s, one run) mixed those.",
        "- Both pipelines keep `tf.data`'s deterministic order (the default): prediction order "
        "and seeded shuffles depend on it. `deterministic=False` lets a fast element overtake a "
        "slow one; with equal-sized files it gains little, and it would make epochs "
        "unreproducible, so breastcam does not use it.",
        "- Truncation, CRC and format checks of every file run once before training "
        "(`breastcam.data.preflight`), not per epoch; what is left in the hot path of a one-format dataset "
        "is the end-marker check on the last 1024 bytes.",
        "- Device augmentation (`data.augment_on: device`): the pipeline yields uint8 batches and "
        "the training step casts, augments (the recipe's Keras layers) and preprocesses; here "
        "the 'device' is this machine's CPU, so the row measures the op cost outside `tf.data`, "
        "not an accelerator. RandomRotation has no XLA kernel: Keras runs such a step without "
        "jit_compile (docs in `breastcam/train/device_augment.py`).",
        "",
    ]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def ensure_synth(synth: Path) -> None:
    fractions = {"bach": 0.05, "mias": 0.1, "cddcesm": 0.01}
    for tree, fraction in fractions.items():
        if not (synth / tree).is_dir():
            subprocess.run([sys.executable, "-m", "breastcam", "synth", "--like", tree, "--out",
                            str(synth / tree), "--fraction", str(fraction)], check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "breakhis")
    parser.add_argument("--entries", type=int, default=960, help="uncached epoch length (~20 s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="cached epochs per recipe row")
    parser.add_argument("--large-entries", type=int, default=48)
    parser.add_argument("--synth", type=Path, default=None,
                        help="folder of synthetic trees bach/, mias/, cddcesm/ (written if missing)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks" / "pipeline.md")
    args = parser.parse_args(argv)

    found = sorted(str(p) for p in args.data.rglob("*.png"))
    if not found:
        parser.error(f"no PNG files under {args.data}")
    args.files = len(found)
    files = [found[i % len(found)] for i in range(args.entries)]

    loads = [os.getloadavg()[0]]
    print("1. uncached epoch, interleaved", flush=True)
    uncached = bench_uncached(files, args.rounds)
    loads.append(os.getloadavg()[0])
    print("2. op profile", flush=True)
    profile = op_profile(found)
    large = []
    if args.synth is not None:
        print("3. large decodes", flush=True)
        ensure_synth(args.synth)
        large = bench_large(args.synth, args.large_entries)
    print("4. augmented cached epochs", flush=True)
    augmented = bench_augmented(files[: max(BATCH, args.entries // 3)], args.epochs)
    loads.append(os.getloadavg()[0])
    print(write_report(args.out, uncached, profile, large, augmented, loads, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
