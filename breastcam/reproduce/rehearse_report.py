"""A rehearsal's numbers -> the projected full protocol -> ``rehearsal.md`` and ``rehearsal.json``.

Kept apart from the measuring (:mod:`~breastcam.reproduce.rehearse`) so that the projection can
be recomputed from a rehearsal's numbers without training; :data:`PROJECTION` says how it is made.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


PROJECTION = (
    "How the projection is made (per run, seconds): time to the first batch + (epochs x "
    "training steps - 1) x step + epochs x validation steps x validation step + the first "
    "epoch's wait for decoding where a batch decodes slower than a step + test steps x "
    "validation step. Steps are timed in the first, uncached epoch (input waits included), so "
    "cached epochs may run faster; early stopping can only shorten a run. Runs not rehearsed "
    "use the step times of a rehearsed run of the same (subset, protocol, model), else model, "
    "with their own split sizes. Cache: resized uint8 train + validation images, height x "
    "width x 3 bytes each. Decode: the uncached input pipeline (decode, resize, stain, "
    "preprocessing) alone, over its first batches. CPU time: the same sum of steps in CPU "
    "seconds of the process (all threads), which a loaded machine does not inflate.")


def _split_counts(config: str) -> dict[str, int]:
    from breastcam.data.manifest import read_manifest
    from breastcam.data.splits import fold_view
    from breastcam.train.config import load_config

    cfg = load_config(config)
    df = read_manifest(cfg["data"]["manifest"])
    if cfg["data"].get("fold") is not None:
        df = fold_view(df, int(cfg["data"]["fold"]))
    counts = df["split"].value_counts()
    return {k: int(counts.get(k, 0)) for k in ("train", "val", "test")}


def _source(entry: dict, measured: dict[str, dict]) -> dict | None:
    """The measured run that stands for ``entry``: itself, same group's, or same model's."""
    if entry["id"] in measured:
        return measured[entry["id"]]
    for m in measured.values():
        if m["group"] == entry["group"]:
            return m
    for m in measured.values():
        if m["group"][2] == entry["group"][2]:
            return m
    return None


def project(entries: list[dict], measured: list[dict]) -> list[dict]:
    """One row per planned run: its split sizes, the measured numbers it uses, its projection."""
    from breastcam.train.config import load_config

    by_id = {}
    for m in measured:
        entry = next(e for e in entries if e["id"] == m["id"])
        by_id[m["id"]] = {**m, "group": entry["group"]}
    rows = []
    for entry in entries:
        n = _split_counts(entry["config"])
        src = _source(entry, by_id)
        if src is None:
            rows.append({"id": entry["id"], "measured": False, "source": None, **n})
            continue
        cfg = load_config(entry["config"])
        batch = int(cfg["train"]["batch_size"])
        epochs = int(cfg["train"]["epochs"])
        size = list(cfg["data"]["image_size"])
        steps, vsteps, tsteps = (math.ceil(n[k] / batch) for k in ("train", "val", "test"))
        vstep = src["val_step_s"] if src["val_step_s"] is not None else src["step_s"] / 3
        decode_wait = max(0.0, batch / src["decode_img_s"] - src["step_s"]) * steps
        # the first batch (tracing included) is in the start-up already
        projected = (src["time_to_first_batch_s"] + (epochs * steps - 1) * src["step_s"]
                     + epochs * vsteps * vstep + decode_wait + tsteps * vstep)
        cpu = None
        if src.get("step_cpu_s") is not None:  # the same, in CPU seconds of the process
            vcpu = src["val_step_cpu_s"] if src["val_step_cpu_s"] is not None else src["step_cpu_s"] / 3
            cpu = epochs * (steps * src["step_cpu_s"] + vsteps * vcpu) + tsteps * vcpu
        cached = n["train"] + n["val"] if cfg["data"].get("cache") else 0
        row = {k: v for k, v in src.items() if k != "group"}
        row.update({"id": entry["id"], "measured": entry["id"] in by_id, "source": src["id"],
                    **n, "epochs": epochs, "batch_size": batch, "steps_per_epoch": steps,
                    "cache": cfg["data"].get("cache"),
                    "cache_mb": cached * size[0] * size[1] * 3 / 2**20,
                    "projected_s": projected, "projected_cpu_s": cpu})
        rows.append(row)
    return rows


def _fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.1f} min"


def write_rehearsal(folder: Path, meta: dict, entries: list[dict], measured: list[dict],
                    failures: list[dict]) -> Path:
    """Write ``rehearsal.json`` and ``rehearsal.md`` under ``folder``; returns the .md."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = project(entries, measured) if entries else []
    done = [r for r in rows if "projected_s" in r]
    summary = {**meta, "runs_planned": len(entries), "runs_measured": len(measured),
               "runs_failed": len(failures), "failures": failures,
               "projected_total_s": sum(r["projected_s"] for r in done) if done else None,
               "projected_cpu_s": (sum(r["projected_cpu_s"] for r in done)
                                   if done and all(r["projected_cpu_s"] is not None for r in done)
                                   else None),
               "runs_unprojected": [r["id"] for r in rows if "projected_s" not in r],
               "runs": rows}
    (folder / "rehearsal.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")

    name = meta["experiment"]
    lines = [f"# Rehearsal of {name}", "",
             f"- data: `{meta['data_dir']}`" + (f", {meta['images']} images" if "images" in meta else ""),
             f"- date: {meta['date']}; {meta['cpu_count']} CPU cores; load average before "
             + " / ".join(f"{x:.1f}" for x in meta["load_before"])
             + ("; after " + " / ".join(f"{x:.1f}" for x in meta["load_after"])
                if "load_after" in meta else "")]
    if meta.get("trains_nothing"):
        lines += ["", f"{name} trains nothing of its own (it {meta['trains_nothing']}): nothing "
                  "to rehearse."]
        (folder / "rehearsal.md").write_text("\n".join(lines) + "\n")
        return folder / "rehearsal.md"
    lines += [
        f"- {len(entries)} run(s) planned, {len(measured)} rehearsed ({meta['steps']} training and "
        f"{meta['steps']} validation step(s) each; runs picked: `{meta['pick']}`), "
        f"{len(failures)} failed" + (" [quick block]" if meta.get("quick") else ""),
        f"- planning {meta['plan_s']:.1f} s, pre-flight check of every image "
        f"{meta['preflight_s']:.1f} s, splits / offline copies / stain reference "
        f"{meta['prepare_s']:.1f} s ({meta['prepared_mb']:,.1f} MB on disk)",
        f"- peak RSS of the whole rehearsal process: {meta['process_peak_rss_mb']:,.0f} MB",
    ]
    if summary["projected_total_s"] is not None:
        lines.append(f"- **projected full protocol on this machine: "
                     f"{_hours(summary['projected_total_s'])}** "
                     f"({summary['projected_total_s']:,.0f} s; every epoch, no early stopping)")
    if summary["projected_cpu_s"] is not None:
        lines.append(f"- projected CPU time of the steps (independent of other load): "
                     f"{_hours(summary['projected_cpu_s'])} of CPU, i.e. at least "
                     f"{_hours(summary['projected_cpu_s'] / (meta['cpu_count'] or 1))} on "
                     f"{meta['cpu_count']} idle cores")
    lines += ["", "| run | measured | train / val / test | epochs x steps | first batch s | "
              "step s | train img/s | decode img/s | peak RSS MB | cache MB | checkpoint MB | "
              "projected |", "|" + "---|" * 12]
    for r in rows:
        if "projected_s" not in r:
            lines.append(f"| {r['id']} | no | {r['train']} / {r['val']} / {r['test']} | "
                         + "- | " * 8 + "not projected (no run of its model rehearsed) |")
            continue
        lines.append(
            f"| {r['id']} | {'yes' if r['measured'] else 'from ' + r['source']} | "
            f"{r['train']} / {r['val']} / {r['test']} | {r['epochs']} x {r['steps_per_epoch']} | "
            f"{_fmt(r['time_to_first_batch_s'])} | {_fmt(r['step_s'], 2)} | "
            f"{_fmt(r['train_img_s'])} | {_fmt(r['decode_img_s'])} | {_fmt(r['peak_rss_mb'], 0)} | "
            f"{_fmt(r['cache_mb'], 0)} ({r['cache']}) | {_fmt(r['checkpoint_mb'])} | "
            f"{_hours(r['projected_s'])} |")
    if failures:
        lines += ["", "Failed runs:", ""] + [f"- {f['id']}: {f['error']}" for f in failures]
    if meta.get("notes"):
        lines += ["", "Plan notes:", ""] + [f"- {n}" for n in meta["notes"]]
    if any(r.get("steps_run") == 1 for r in rows):
        lines += ["", "Runs whose epoch had one batch only: their step time includes tracing "
                  "(an overestimate)."]
    lines += ["", PROJECTION]
    (folder / "rehearsal.md").write_text("\n".join(lines) + "\n")
    return folder / "rehearsal.md"

