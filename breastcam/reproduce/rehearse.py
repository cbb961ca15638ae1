"""``breastcam reproduce NAME --data-dir DIR --rehearse``: the whole plan, a few steps per run.

Why: before hours of training on a full dataset a user wants to know that every run of the
experiment starts (splits, stain reference, offline copies, model at the paper's input size,
callbacks, checkpoint), what it costs in memory and disk, and how long the full protocol would
take on this machine. A rehearsal plans the experiment exactly as ``reproduce`` does
(:func:`~breastcam.reproduce.plan.make_plan`, :func:`~breastcam.reproduce.plan_file.write_study`:
full image counts, committed splits where the download is complete), then trains each run through
``breastcam.train.run`` for one epoch that a callback stops after ``steps`` training and
validation batches. Nothing is evaluated and no report is made; the run directories live in a
scratch folder (never ``data_manifests/`` or the real runs). The projection from the measured
step times is :mod:`~breastcam.reproduce.rehearse_report`'s.
"""

from __future__ import annotations

import copy
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import keras

from breastcam.errors import UsageError
from breastcam.runs import files, resolve_preprocessing

PICKS = ("all", "group", "model")  # every run; one per (subset, protocol, model); one per model


class StepProbe(keras.callbacks.Callback):
    """Times training and validation batches and stops each after ``steps`` batches."""

    def __init__(self, steps: int, start: float):
        super().__init__()
        self.steps, self.start = int(steps), start
        self.train: list[float] = []
        self.val: list[float] = []
        self.train_cpu: list[float] = []  # process CPU seconds (all threads): load-independent
        self.val_cpu: list[float] = []
        self.first_batch_s: float | None = None
        self._t = self._c = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._t, self._c = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.train.append(now - self._t)
        self.train_cpu.append(time.process_time() - self._c)
        if self.first_batch_s is None:
            self.first_batch_s = now - self.start
        if len(self.train) >= self.steps:
            self.model.stop_training = True

    def on_test_batch_begin(self, batch, logs=None):
        self._t, self._c = time.perf_counter(), time.process_time()

    def on_test_batch_end(self, batch, logs=None):
        self.val.append(time.perf_counter() - self._t)
        self.val_cpu.append(time.process_time() - self._c)
        if len(self.val) >= self.steps:
            self.model.stop_evaluating = True


class RssSampler:
    """Peak resident memory of this process while a block runs (sampled every 0.1 s; Linux).

    ``ru_maxrss`` only ever grows over a process, so it cannot give one run's peak."""

    def __init__(self, every: float = 0.1):
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def current() -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:  # not Linux: the process-wide peak so far
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(self.every)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def pick_runs(entries: list[dict], pick: str) -> list[dict]:
    """The runs to rehearse: all, the first of each (subset, protocol, model) group (folds and
    seeds cost the same), or the first of each model."""
    if pick not in PICKS:
        raise UsageError(f"--rehearse-runs {pick!r}: choose one of {', '.join(PICKS)}")
    if pick == "all":
        return list(entries)
    seen, out = set(), []
    for entry in entries:
        key = tuple(entry["group"]) if pick == "group" else entry["group"][2]
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def _dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def decode_rate(cfg: dict, batches: int) -> tuple[float, int]:
    """Images per second of the uncached input pipeline of ``cfg`` (decode, resize, stain,
    preprocessing; no augmentation), over its first ``batches`` training batches."""
    from breastcam.data.manifest import read_manifest
    from breastcam.data.pipeline import make_dataset
    from breastcam.data.splits import fold_view
    from breastcam.stain.config import stain_from_config

    data = cfg["data"]
    df = read_manifest(data["manifest"])
    if data.get("fold") is not None:
        df = fold_view(df, int(data["fold"]))
    rows = df[df["split"] == "train"]
    ds = make_dataset(rows, data.get("root") or ".", image_size=tuple(data["image_size"]),
                      preprocessing=resolve_preprocessing(cfg["model"]["name"], data),
                      batch_size=cfg["train"]["batch_size"], stain=stain_from_config(data.get("stain")),
                      label_mode="sparse", cache=None)
    start, images = time.perf_counter(), 0
    for batch, _ in ds.take(batches):
        images += int(batch.shape[0])
    return images / max(time.perf_counter() - start, 1e-9), images


def measure_run(entry: dict, steps: int, decode_cache: dict, log: Callable[[str], None], *,
                random_weights: bool = False) -> dict:
    """Train one planned run for ``steps`` batches through ``breastcam.train.run``; its numbers."""
    from breastcam.train import run as train_run
    from breastcam.train.config import load_config

    cfg = load_config(entry["config"])
    full = copy.deepcopy(cfg)
    cfg["train"]["epochs"] = 1  # the probe stops the one epoch after `steps` batches
    cfg["train"]["early_stopping"] = None
    if random_weights:  # no download; the step costs the same from any starting weights
        cfg["model"]["weights"] = None
    key = (str(cfg["data"]["manifest"]), cfg["data"].get("fold"), str(cfg["data"]["image_size"]),
           str(cfg["data"].get("stain")), cfg["train"]["batch_size"])
    if key not in decode_cache:  # the same inputs decode at the same rate for every model
        decode_cache[key] = decode_rate(cfg, max(2, steps))
    rate, decoded = decode_cache[key]
    start, cpu_start = time.perf_counter(), time.process_time()
    probe = StepProbe(steps, start)
    with RssSampler() as rss:
        train_run(cfg, callbacks=[probe], verbose=0)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    run_dir = Path(cfg["output_dir"])
    later = probe.train[1:] or probe.train  # the first step includes tracing
    later_val = probe.val[1:] or probe.val
    step = sum(later) / len(later)
    later_cpu = probe.train_cpu[1:] or probe.train_cpu
    later_val_cpu = probe.val_cpu[1:] or probe.val_cpu
    result = {
        "id": entry["id"], "measured": True, "source": entry["id"],
        "model": cfg["model"]["name"], "image_size": list(cfg["data"]["image_size"]),
        "batch_size": int(cfg["train"]["batch_size"]), "epochs": int(full["train"]["epochs"]),
        "cache": cfg["data"].get("cache"), "steps_run": len(probe.train),
        "val_steps_run": len(probe.val),
        "time_to_first_batch_s": probe.first_batch_s, "first_step_s": probe.train[0],
        "step_s": step, "val_step_s": sum(later_val) / len(later_val) if later_val else None,
        "train_img_s": cfg["train"]["batch_size"] / step,
        "step_cpu_s": sum(later_cpu) / len(later_cpu),
        "val_step_cpu_s": sum(later_val_cpu) / len(later_val_cpu) if later_val_cpu else None,
        "decode_img_s": rate, "decode_images": decoded, "wall_s": wall, "cpu_s": cpu,
        "peak_rss_mb": rss.peak / 2**20,
        "checkpoint_mb": _dir_bytes(run_dir / files.BEST) / 2**20,
        "last_weights_mb": _dir_bytes(run_dir / "last.weights.h5") / 2**20,
    }
    log(f"  first batch {result['time_to_first_batch_s']:.1f} s, step {step:.2f} s "
        f"({result['train_img_s']:.1f} img/s), decode {rate:.1f} img/s, peak RSS "
        f"{result['peak_rss_mb']:.0f} MB, checkpoint {result['checkpoint_mb']:.1f} MB")
    keras.backend.clear_session()
    return result


def rehearse(
    experiment: str | dict,
    data_dir: str | Path,
    *,
    steps: int = 3,
    out_dir: str | Path = "reports",
    pick: str = "all",
    work_dir: str | Path | None = None,
    quick: bool = False,
    models: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    keep: bool = False,
    random_weights: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Rehearse ``experiment`` on ``data_dir``; returns ``<out_dir>/<name>/rehearsal.md``.

    ``pick`` chooses the runs trained (:func:`pick_runs`); the others are projected from a
    measured run of the same model. ``quick`` rehearses the experiment's quick block (tests).
    Run directories go to ``work_dir`` (a temporary folder by default, removed unless ``keep``).
    ``random_weights`` trains from random initialisation where the experiment names pretrained
    weights (for machines that cannot download them; recorded in the report).
    """
    from breastcam.report import load_experiment
    from breastcam.reproduce import check_plan_files, plan as planning, special
    from breastcam.reproduce.plan_file import write_study
    from breastcam.reproduce.rehearse_report import write_rehearsal

    if steps < 1:
        raise UsageError(f"--steps {steps}: a rehearsal needs at least 1 step per run")
    pick_runs([], pick)  # a bad --rehearse-runs fails before any work
    exp = load_experiment(experiment) if isinstance(experiment, str) else dict(experiment)
    data_dir = Path(data_dir).resolve()
    if not data_dir.exists():
        raise UsageError(f"data folder {data_dir} not found: give the dataset root with --data-dir")
    report_dir = Path(out_dir) / exp["name"]
    meta = {"experiment": exp["name"], "data_dir": str(data_dir), "steps": steps, "pick": pick,
            "quick": quick, "cpu_count": os.cpu_count(), "load_before": list(os.getloadavg()),
            "random_weights": random_weights, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    handler = special.HANDLERS.get(exp["name"])
    if handler in (special.data_tables, special.params_table):
        meta["trains_nothing"] = ("counts images and splits" if handler is special.data_tables
                                  else "counts parameters and reads the timing.json of other "
                                  "experiments' runs")
        return write_rehearsal(report_dir, meta, [], [], [])
    scratch = Path(work_dir or tempfile.mkdtemp(prefix="breastcam-rehearse-")).resolve()
    folder = scratch / exp["name"]
    try:
        t0 = time.perf_counter()
        plan = planning.make_plan(exp, data_dir, out_dir=folder, quick=quick, seeds=seeds,
                                  models=models, protocols=protocols)
        for job in plan.splits:  # never data_manifests/: a rehearsal's splits are scratch
            job.path = folder / "splits" / job.path.name
        meta["images"] = int(len(plan.manifest))
        meta["plan_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        check_plan_files(plan, log)
        meta["preflight_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        study = write_study(plan)  # splits, offline copies, stain reference, run configs
        meta["prepare_s"] = time.perf_counter() - t0
        meta["prepared_mb"] = _dir_bytes(folder) / 2**20
        entries = study["runs"]
        chosen = pick_runs(entries, pick)
        log(f"{exp['name']}: rehearsing {len(chosen)} of {len(entries)} run(s), {steps} step(s) "
            f"each, {meta['images']} images")
        decode_cache: dict = {}
        measured, failures = [], []
        for i, entry in enumerate(chosen, 1):
            log(f"[{i}/{len(chosen)}] {entry['id']}")
            try:
                measured.append(measure_run(entry, steps, decode_cache, log,
                                            random_weights=random_weights))
            except Exception as err:  # one failing run must not hide the others' numbers
                failures.append({"id": entry["id"], "error": f"{type(err).__name__}: {err}"})
                log(f"  failed: {type(err).__name__}: {err}")
        meta["notes"] = list(study["notes"]) + list(study["deviations"])
        if random_weights:
            meta["notes"].append("rehearsed with weights=None (random initialisation) instead "
                                 "of the experiment's pretrained weights; the step time is "
                                 "the same, the numbers learnt mean nothing")
        meta["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        meta["load_after"] = list(os.getloadavg())
        return write_rehearsal(report_dir, meta, entries, measured, failures)
    finally:
        if not keep and work_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
