"""CAM throughput: breastcam's batched engine against a per-image loop and tf-keras-vis.

    python benchmarks/cam.py [--images 32] [--reps 3] [--loop-images 4] [--slow-images 2]
                             [--all-channels-k 0] [--out reports/benchmarks/cam.md]
    python benchmarks/cam.py --only-explain-loop   # just the `breastcam explain` row (below)

ResNet50 (``weights=None``) at 224 px with breastcam's head (GAP -> Dense "logits" -> softmax),
CAM layer ``conv5_block3_out``, images from the BreakHis sample in ``../shared/data`` (the 20
PNGs repeated to fill the batch), scaled to [-1, 1], on the CPU. Every way of computing a map is
warmed up (tracing, first calls) before it is timed; the figure is the median of ``--reps``
timed runs; the slow ways (the per-image loop, Score-CAM, DT Grad-CAM, tf-keras-vis) run on fewer
images or with ``--slow-reps`` repetitions. Score-CAM on all 2,048 channels would take minutes per
image on a CPU: its cost is scaled linearly from the top-64 run (each channel is one masked
forward pass), or measured on one image with ``--all-channels-k`` channels (2048: all).

Peers, reproduced side by side in the same process:
- the per-image loop the way paper C's Grad-CAM function is called: the Keras tutorial's
  ``make_gradcam_heatmap`` (builds its gradient model on every call, eager);
- tf-keras-vis 0.8.7 ``Gradcam`` (batch of ``--images``) and ``Scorecam(max_N=64)`` (one image per
  call, its cheapest use: on a batch it scores the union of the images' top channels)
  (``pip install -e ".[bench]"``).

The `breastcam explain` folder loop (``explain_files``: decode, CAM, overlay, PNG + .npy writes,
metrics.csv) is timed against the engine alone (``get_cam(...)(x)`` on the already preprocessed
batch) on the same ``--images`` files (``--explain-dt-images`` of them for DT Grad-CAM), at the same
batch size (``--explain-batch``, the CLI's default 8), for Grad-CAM and DT Grad-CAM. The two are run alternately, ``--explain-reps`` pairs
(order flipped every pair), so that load from other work hits both alike; neither pays tracing
(the loop is handed the engine's CAM object, traced by a warm-up call). ``--only-explain-loop`` runs
just this part and replaces its section in an existing report.

The CPU may be shared with other work: compare the ratios measured within one run, not the
absolute images per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the goals are CPU figures

import warnings  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from breastcam.data.decode import read_image  # noqa: E402
from breastcam.data.pipeline import resize_image  # noqa: E402
from breastcam.data.preprocess import get_preprocessor  # noqa: E402
from breastcam.explain import get_cam  # noqa: E402
from breastcam.explain.run import explain_files  # noqa: E402

# The peers call functional models with a bare tensor: Keras warns about the input structure.
warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BREASTCAM_SHARED_DATA", REPO.parent / "shared" / "data"))
LAYER = "conv5_block3_out"
SIZE = 224


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    backbone = keras.applications.ResNet50(weights=None, include_top=False, input_tensor=inp)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    x = keras.layers.Dense(2, name="logits")(x)
    out = keras.layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inp, out, name="resnet50")


def load_images(n: int) -> np.ndarray:
    files = sorted((SHARED / "breakhis").rglob("*.png"))
    if not files:
        sys.exit(f"no BreakHis PNGs under {SHARED / 'breakhis'}; set BREASTCAM_SHARED_DATA")
    images = [resize_image(tf.constant(read_image(p)), (SIZE, SIZE)) for p in files]
    x = tf.cast(tf.stack([images[i % len(images)] for i in range(n)]), tf.float32)
    return get_preprocessor("minus_one_one")(x).numpy()


# --- the peer: Keras tutorial Grad-CAM (https://keras.io/examples/vision/grad_cam/) -----------


def make_gradcam_heatmap(img_array, model, last_conv_layer_name, pred_index=None):
    grad_model = keras.models.Model(model.inputs, [model.get_layer(last_conv_layer_name).output, model.output])
    with tf.GradientTape() as tape:
        last_conv_layer_output, preds = grad_model(img_array)
        if pred_index is None:
            pred_index = tf.argmax(preds[0])
        class_channel = preds[:, pred_index]
    grads = tape.gradient(class_channel, last_conv_layer_output)
    pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
    last_conv_layer_output = last_conv_layer_output[0]
    heatmap = last_conv_layer_output @ pooled_grads[..., tf.newaxis]
    heatmap = tf.squeeze(heatmap)
    heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
    return heatmap.numpy()


# --- timing ----------------------------------------------------------------------------------


def warm_scorecam(cam, x1: np.ndarray) -> None:
    """Trace a ScoreCAM's compiled parts with one masked forward pass instead of a full call."""
    xt = tf.constant(x1)
    low, t, _ = cam._select_fn(xt, tf.constant([-1], tf.int32))
    cam._score_fn(xt, tf.transpose(low, [0, 3, 1, 2])[0, :1], tf.constant([0], tf.int32), t)
    cam._combine_fn(low, tf.zeros((1, cam.k)), tf.constant(x1.shape[1:3], tf.int32))


def timed(fn, reps: int, warmup: bool = True) -> float:
    """Median wall seconds of ``reps`` calls of ``fn`` after one untimed warm-up call."""
    if warmup:
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


EXPLAIN_HEADING = "## `breastcam explain` folder loop vs the engine"
EXPLAIN_GOAL = 0.7  # the folder loop's images/s at least this fraction of the engine's


def explain_loop_section(model: keras.Model, n: int, batch: int, pairs: int, n_samples: int,
                         n_dt: int) -> list[str]:
    """Markdown lines: engine vs ``explain_files`` on the same ``n`` files (``n_dt`` of them for
    DT Grad-CAM), timed alternately."""
    sources = sorted((SHARED / "breakhis").rglob("*.png"))
    tmp = Path(tempfile.mkdtemp(prefix="cam_explain_bench_"))
    try:
        folder = tmp / "images"
        folder.mkdir()
        for i in range(n):  # distinct names: the loop writes one overlay per file name
            src = sources[i % len(sources)]
            shutil.copy(src, folder / f"{i:03d}_{src.name}")
        files = sorted(folder.iterdir())
        images = [resize_image(tf.constant(read_image(p)), (SIZE, SIZE)) for p in files]
        x_all = get_preprocessor("minus_one_one")(tf.cast(tf.stack(images), tf.float32)).numpy()
        table, summary = [], []
        for method, params, n in (("gradcam", {}, n), ("dtgradcam", {"n_samples": n_samples}, min(n, n_dt))):
            cam = get_cam(method, model, LAYER, batch_size=batch, **params)
            out = tmp / "out"
            x, chosen = x_all[:n], files[:n]

            def engine():
                cam(x)

            def loop():
                shutil.rmtree(out, ignore_errors=True)
                explain_files(model, chosen, cam, out_dir=out, preprocessing="minus_one_one",
                              image_size=SIZE, batch_size=batch, progress=False)

            cam(x[:batch])  # warm-up: tracing (the loop reuses this CAM object)
            t_engine, t_loop, paired, cpu = [], [], [], {"engine": [], "loop": []}
            for k in range(pairs):
                order = (engine, loop) if k % 2 == 0 else (loop, engine)
                seconds = {}
                for fn in order:
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn()
                    seconds[fn.__name__] = time.perf_counter() - t0
                    cpu[fn.__name__].append(time.process_time() - c0)  # all threads of this process
                t_engine.append(seconds["engine"])
                t_loop.append(seconds["loop"])
                paired.append(seconds["engine"] / seconds["loop"])
                print(f"explain bench {method} pair {k}: engine {n / seconds['engine']:.2f} img/s, "
                      f"loop {n / seconds['loop']:.2f} img/s", flush=True)
            assert len(list(out.glob("*_overlay.png"))) == n  # the loop did write every overlay
            e, lp = statistics.median(t_engine), statistics.median(t_loop)
            name = f"DT Grad-CAM v2 (N={n_samples})" if method == "dtgradcam" else "Grad-CAM"
            ce, cl = statistics.median(cpu["engine"]), statistics.median(cpu["loop"])
            table += [f"| {name}: engine alone, `get_cam(...)(x)` | {n} | {pairs} | {e:.2f} | {n / e:.2f} | "
                      f"{ce / n * 1000:.0f} |",
                      f"| {name}: `explain_files` folder loop | {n} | {pairs} | {lp:.2f} | {n / lp:.2f} | "
                      f"{cl / n * 1000:.0f} |"]
            ratio, ratio_paired = e / lp, statistics.median(paired)
            summary.append(f"| {name} | {ratio:.2f}x | {min(paired):.2f}-{max(paired):.2f}x (median "
                           f"{ratio_paired:.2f}x) | {ce / cl:.2f}x | >= {EXPLAIN_GOAL}x | "
                           f"{'yes' if min(ratio, ratio_paired) >= EXPLAIN_GOAL else 'NO'} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    return [
        EXPLAIN_HEADING,
        "",
        f"- date: {dt.datetime.now().isoformat(timespec='seconds')}; load average (1/5/15 min) at the end: "
        f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} on {os.cpu_count()} cores",
        f"- {len(files)} files (the BreakHis sample, copied to distinct names; the first {min(len(files), n_dt)} "
        f"for DT Grad-CAM, whose N noisy copies make it N times slower), {SIZE} px, batch {batch} for both; "
        "the loop decodes the files, runs the same CAM object, blends every overlay at the original "
        "size and writes it as PNG with the raw map (.npy) and metrics.csv; deletion/insertion off "
        "(the default; `--faithfulness` adds 2 x 20 forward passes per image)",
        f"- engine and loop were run alternately, {pairs} pairs after a warm-up call (tracing), the order "
        "flipped every pair, so that load from other work on the machine hits both alike; medians",
        "",
        "| way | images | runs | median s | img/s | CPU ms/img |",
        "|---|---|---|---|---|---|",
        *table,
        "",
        "| method | loop / engine img/s (medians) | per pair | engine / loop CPU time | goal | met |",
        "|---|---|---|---|---|---|",
        *summary,
        "",
        "The goal is judged on wall-clock images per second (medians and per pair). CPU time (all "
        "threads of the process, `time.process_time`) hardly depends on the load from other work: "
        "its ratio says how much work decoding, overlays and writes add to the engine's, i.e. the "
        "ratio an otherwise idle machine with no spare core would show.",
    ]


def replace_section(path: Path, lines: list[str]) -> None:
    """Put the explain-loop section into an existing report (replacing an older one)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# CAM throughput (benchmarks/cam.py)\n"
    head, sep, rest = text.partition(EXPLAIN_HEADING)
    tail = ""
    if sep:
        nxt = rest.find("\n## ")
        tail = rest[nxt:] if nxt >= 0 else ""
    path.write_text(head.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n" + tail, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32, help="batch for the fast methods (default 32)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--loop-images", type=int, default=4, help="images for the per-image loop")
    ap.add_argument("--slow-images", type=int, default=1, help="images for Score-CAM (default 1)")
    ap.add_argument("--slow-reps", type=int, default=1)
    ap.add_argument("--all-channels-k", type=int, default=0,
                    help="also time Score-CAM with this many channels on one image (0: skip)")
    ap.add_argument("--n-samples", type=int, default=8, help="DT Grad-CAM v2 noisy copies")
    ap.add_argument("--explain-batch", type=int, default=8, help="batch of the explain-loop rows (CLI default 8)")
    ap.add_argument("--explain-reps", type=int, default=3, help="engine/loop pairs timed alternately")
    ap.add_argument("--explain-dt-images", type=int, default=16, help="images for the DT Grad-CAM pair (default 16)")
    ap.add_argument("--only-explain-loop", action="store_true",
                    help="time only the explain folder loop vs the engine; update its section of --out")
    ap.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "cam.md"))
    args = ap.parse_args()
    if args.only_explain_loop:
        lines = explain_loop_section(build_model(), args.images, args.explain_batch, args.explain_reps,
                                     args.n_samples, args.explain_dt_images)
        replace_section(Path(args.out), lines)
        print("\n".join(lines))
        print(f"updated {args.out}")
        return

    load_before = os.getloadavg()
    t_start = time.perf_counter()
    model = build_model()
    x = load_images(args.images)
    x_loop, x_slow = x[: args.loop_images], x[: args.slow_images]
    rows: list[dict] = []
    notes: list[str] = []

    def add(way: str, n: int, reps: int, seconds: float, **extra) -> dict:
        row = {"way": way, "images": n, "reps": reps, "seconds": seconds, "img_per_s": n / seconds, **extra}
        rows.append(row)
        print(f"{way:70s} {n:3d} img  {seconds:8.2f} s  {n / seconds:8.2f} img/s", flush=True)
        return row

    # Forward pass alone: the floor a Grad-CAM cannot beat.
    fwd = tf.function(lambda v: model(v, training=False))
    xt = tf.constant(x)
    add(f"forward pass alone, tf.function, batch {args.images}", args.images, args.reps,
        timed(lambda: fwd(xt).numpy(), args.reps))

    gradcam = get_cam("gradcam", model, LAYER, batch_size=args.images)
    r_grad = add(f"breastcam gradcam, batch {args.images}", args.images, args.reps,
                 timed(lambda: gradcam(x), args.reps))
    targets = gradcam.last_targets_

    r_loop = add("Keras-tutorial Grad-CAM per image (grad model rebuilt per call, eager)", len(x_loop), args.reps,
                 timed(lambda: [make_gradcam_heatmap(img[None], model, LAYER) for img in x_loop], args.reps))

    gradcampp = get_cam("gradcampp", model, LAYER, batch_size=args.images)
    r_gpp = add(f"breastcam gradcampp, batch {args.images}", args.images, args.reps,
                timed(lambda: gradcampp(x), args.reps))
    eigencam = get_cam("eigencam", model, LAYER, batch_size=args.images)
    r_eig = add(f"breastcam eigencam, batch {args.images}", args.images, args.reps,
                timed(lambda: eigencam(x), args.reps))

    dt_cam = get_cam("dtgradcam", model, LAYER, n_samples=args.n_samples, batch_size=args.images)
    dt_cam(x[:2])  # warm-up: traces the tape (batch-size independent)
    r_dt = add(f"breastcam dtgradcam v2 (N={args.n_samples}), {args.images} images, copies in batches of "
               f"{args.images}", args.images, args.slow_reps, timed(lambda: dt_cam(x), args.slow_reps, warmup=False))

    score64 = get_cam("scorecam", model, LAYER, top_k=64, batch_size=64)
    warm_scorecam(score64, x[:1])
    r_s64 = add("breastcam scorecam top_k=64 (per image), masked batches of 64", len(x_slow), args.slow_reps,
                timed(lambda: score64(x_slow), args.slow_reps, warmup=False))
    r_sall = None
    if args.all_channels_k > 0:
        score_k = get_cam("scorecam", model, LAYER, top_k=args.all_channels_k, batch_size=64)
        warm_scorecam(score_k, x[:1])
        r_sall = add(f"breastcam scorecam top_k={score_k.k}, masked batches of 64 (for the all-channel cost)",
                     1, 1, timed(lambda: score_k(x[:1]), 1, warmup=False), k=score_k.k)

    # tf-keras-vis
    r_vis_grad = r_vis_score = r_vis_score_batch = None
    try:
        import tf_keras_vis
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore

        vis_grad = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        score = CategoricalScore([int(t) for t in targets])
        warm = min(8, args.images)
        vis_grad(CategoricalScore([int(t) for t in targets[:warm]]), x[:warm], penultimate_layer=LAYER)
        r_vis_grad = add(f"tf-keras-vis {tf_keras_vis.__version__} Gradcam, batch {args.images}", args.images,
                         args.slow_reps, timed(lambda: vis_grad(score, x, penultimate_layer=LAYER), args.slow_reps,
                                               warmup=False))
        vis_score = Scorecam(model, model_modifier=ReplaceToLinear(), clone=True)
        one = CategoricalScore([int(targets[0])])
        vis_score(one, x[:1], penultimate_layer=LAYER, max_N=32)  # warm-up at half the cost
        r_vis_score = add("tf-keras-vis Scorecam max_N=64, one image per call", 1, args.slow_reps,
                          timed(lambda: vis_score(one, x[:1], penultimate_layer=LAYER, max_N=64),
                                args.slow_reps, warmup=False))
        if args.slow_images > 1:  # the same batch breastcam's Score-CAM row explains
            k = args.slow_images
            batch_score = CategoricalScore([int(t) for t in targets[:k]])
            r_vis_score_batch = add(f"tf-keras-vis Scorecam max_N=64, batch of {k}", k, args.slow_reps,
                                    timed(lambda: vis_score(batch_score, x[:k], penultimate_layer=LAYER,
                                                            max_N=64), args.slow_reps, warmup=False))
    except Exception as err:  # a peer that fails to run is reported, not fatal
        notes.append(f"tf-keras-vis could not be run: {type(err).__name__}: {err}")
        print(notes[-1], file=sys.stderr)

    # tf-keras-vis's max_N on a batch: every image is scored on the union of the images' top
    # channels (ranked by the spatial standard deviation of the activations).
    acts = gradcam.probe(tf.constant(x), training=False)[0]
    top = tf.math.top_k(tf.math.reduce_std(acts, axis=[1, 2]), 64).indices.numpy()
    unions = {b: len(np.unique(top[:b])) for b in (1, 4, 8, 16, 32) if b <= len(x)}

    load_after = os.getloadavg()
    total = time.perf_counter() - t_start

    # --- ratios and goals --------------------------------------------------------------------
    def ratio(a, b):
        return None if a is None or b is None else a["img_per_s"] / b["img_per_s"]

    speed_loop = ratio(r_grad, r_loop)
    speed_vis_grad = ratio(r_grad, r_vis_grad)
    speed_vis_score = ratio(r_s64, r_vis_score)
    speed_vis_score_batch = ratio(r_s64, r_vis_score_batch)
    dt_rel = r_dt["seconds"] / (args.n_samples * r_grad["seconds"])
    goals = [
        ("batched Grad-CAM vs per-image loop", speed_loop, ">= 8x", speed_loop is not None and speed_loop >= 8),
        ("batched Grad-CAM vs tf-keras-vis Gradcam", speed_vis_grad, ">= 2x",
         speed_vis_grad is not None and speed_vis_grad >= 2),
        ("Score-CAM top-64 vs tf-keras-vis Scorecam max_N=64, one image per call (breastcam timed on "
         f"a batch of {args.slow_images})", speed_vis_score, ">= 2x",
         speed_vis_score is not None and speed_vis_score >= 2),
        (f"Score-CAM top-64 vs tf-keras-vis Scorecam max_N=64, the same batch of {args.slow_images}",
         speed_vis_score_batch, ">= 2x", speed_vis_score_batch is not None and speed_vis_score_batch >= 2),
        (f"DT Grad-CAM v2 time / ({args.n_samples} x Grad-CAM time)", dt_rel, "<= 1.2", dt_rel <= 1.2),
    ]

    fmt = lambda v, suffix="x": "n/a" if v is None else f"{v:.2f}{suffix}"  # noqa: E731
    lines = [
        "# CAM throughput (benchmarks/cam.py)",
        "",
        f"- date: {dt.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.processor() or platform.platform()}",
        f"- Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}",
        f"- model: ResNet50 (weights=None) + GAP + Dense logits + softmax, {SIZE} px, CAM layer `{LAYER}`",
        f"- images: the BreakHis sample of `../shared/data` (20 PNGs, repeated to {args.images}), "
        "resized to 224 like the training pipeline, scaled to [-1, 1]",
        f"- timing: a warm-up, then the median of {args.reps} runs ({args.slow_reps} for DT Grad-CAM, "
        "Score-CAM and tf-keras-vis); "
        f"the whole script took {total:.0f} s",
        f"- load average (1/5/15 min) before: {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
        f"after: {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}",
        "",
        ("**The CPU was shared with other work while this ran (load average above 2.5 on 2 cores, where this script itself accounts for about 2): absolute "
         "images per second are noisy and low; the ratios below, measured within this one run, are the result.**"
         if max(load_before[0], load_after[0]) > 2.5 else
         "The machine was otherwise idle (load average at most 2.5 on 2 cores, this script included)."),
        "",
        "| way of computing the maps | images | runs | median s | img/s | s/img |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['way']} | {r['images']} | {r['reps']} | {r['seconds']:.2f} | "
                     f"{r['img_per_s']:.2f} | {r['seconds'] / r['images']:.3f} |")
    lines += [
        "",
        "## Ratios and goals",
        "",
        "| comparison | measured | goal | met |",
        "|---|---|---|---|",
    ]
    for name, value, goal, met in goals:
        lines.append(f"| {name} | {fmt(value)} | {goal} | {'yes' if met else 'NO'} |")
    fwd_row = rows[0]
    extra = [
        "",
        "## Notes",
        "",
        f"- Batched Grad-CAM costs {r_grad['seconds'] / fwd_row['seconds']:.2f} forward passes of the same batch: "
        "the engine is at the forward-pass limit, so its ratio to the per-image loop is set by how much "
        f"the machine slows batched compute against the Python-bound eager loop. Here the forward pass "
        f"ran at {fwd_row['img_per_s']:.1f} img/s and the loop at {r_loop['img_per_s']:.2f} img/s; ANCHORS.md "
        "measured 24-34 and 1.77 img/s on an unshared 2-core CPU, i.e. a contended CPU slows the batched "
        "side more than the loop, so the loop ratio measured here likely understates the unshared one.",
        f"- Grad-CAM++ costs {fmt(r_grad['seconds'] / r_gpp['seconds'] if r_gpp else None)} of Grad-CAM's "
        "throughput, Eigen-CAM (no backward pass; one batched SVD) "
        f"{fmt(r_eig['img_per_s'] / r_grad['img_per_s'])} of it.",
        "- The per-image loop returns a 7x7 map per image; breastcam's maps are also resized to 224 px "
        "and normalised, inside the same compiled function.",
        f"- DT Grad-CAM v2 runs the {args.n_samples} noisy copies of every image through the same compiled "
        "tape in batches, plus one forward pass for the clean predictions and the CPU work of Otsu and "
        "the morphology.",
        "- Score-CAM with `top_k=64` is 64 masked forward passes per image; tf-keras-vis's `max_N=64` on a "
        "batch scores every image on the union of the batch's top channels, so its cost per image grows "
        "with the batch.",
    ]
    channels = model.get_layer(LAYER).output.shape[-1]
    per_channel64 = r_s64["seconds"] / r_s64["images"] / 64
    extra.append(
        f"- Score-CAM on all {channels:,} channels is {channels:,} masked forward passes per image: at the "
        f"top-64 run's {per_channel64 * 1000:.0f} ms per channel, about {per_channel64 * channels:.0f} s per "
        f"image in this run ({channels / 64:.0f}x the `top_k=64` default; ANCHORS.md measured 59 s/img on an "
        "unshared 2-core CPU), hence the default."
    )
    if r_sall is not None:
        per_channel = r_sall["seconds"] / r_sall["k"]
        extra.append(
            f"- Measured check of that scaling: one image with {r_sall['k']} channels took "
            f"{r_sall['seconds']:.1f} s ({per_channel * 1000:.0f} ms per channel)."
        )
    if speed_vis_score is not None:
        union_text = ", ".join(f"{u} for a batch of {b}" for b, u in unions.items())
        extra.append(
            "- tf-keras-vis `Scorecam(max_N=64)` on a batch scores every image on the union of the "
            f"images' top-64 channels: {union_text} on these images (its ranking: spatial standard "
            "deviation). Per image that is union/64 times breastcam's 64 per-image channels, so at the "
            f"one-image ratio measured here ({speed_vis_score:.2f}x) breastcam would be "
            + ", ".join(f"{speed_vis_score * u / 64:.1f}x" for u in unions.values())
            + " faster on those batches (projected from the channel counts, not timed: a batch of 32 "
            "would take tf-keras-vis tens of minutes here). At one image per call both run 64 masked "
            f"forward passes per image: breastcam's cost {r_s64['seconds'] / r_s64['images'] / 64 * 1000:.0f} ms "
            f"a pass (the masks of several images in batches of 64 through one compiled function; "
            f"{score64.last_passes_} distinct masks scored in its last call), tf-keras-vis's "
            f"{r_vis_score['seconds'] / 64 * 1000:.0f} ms (`model.predict` per image)."
        )
    extra += [f"- {n}" for n in notes]
    lines += extra
    lines += [""] + explain_loop_section(model, args.images, args.explain_batch, args.explain_reps,
                                         args.n_samples, args.explain_dt_images)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
