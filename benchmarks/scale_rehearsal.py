"""Collect rehearsals (``breastcam reproduce NAME --rehearse``) at two dataset fractions into
``reports/benchmarks/scale.md``: per experiment, images, decode rate, step time, peak memory,
cache size and projected full time at each fraction, and how they grow between the two.

    python benchmarks/scale_rehearsal.py --small DIR10 --large DIR100 [--out reports/benchmarks/scale.md]
        [--preamble FILE] [--epilogue FILE]

DIR10 / DIR100 are the ``--out`` folders of the rehearsals (``<DIR>/<experiment>/rehearsal.json``).
An experiment missing at a fraction is listed as not run there. ``--preamble`` is Markdown put
before the tables (how the numbers were taken: machine load, what was skipped and why),
``--epilogue`` Markdown after them (what the numbers say, what was not run).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def _load(folder: Path, name: str) -> dict | None:
    path = folder / name / "rehearsal.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _summary(r: dict | None) -> dict | None:
    """One experiment's rehearsal in a few numbers (measured runs only, except the total)."""
    if r is None:
        return None
    if r.get("trains_nothing"):
        return {"nothing": r["trains_nothing"]}
    runs = [x for x in r["runs"] if x.get("measured")]
    projected = [x for x in r["runs"] if "projected_s" in x]

    def med(key):
        vals = [x[key] for x in runs if x.get(key) is not None]
        return statistics.median(vals) if vals else None

    return {
        "images": r.get("images"), "planned": r["runs_planned"], "measured": len(runs),
        "failed": r["runs_failed"], "unprojected": len(r["runs_unprojected"]),
        "train_images": max((x["train"] for x in projected), default=None),
        "decode": med("decode_img_s"), "step": med("step_s"), "first": med("time_to_first_batch_s"),
        "rss": max((x["peak_rss_mb"] for x in runs), default=None),
        "cache": max((x["cache_mb"] for x in projected), default=None),
        "ckpt": max((x["checkpoint_mb"] for x in runs), default=None),
        "prep": r.get("preflight_s", 0) + r.get("prepare_s", 0),
        "total": r.get("projected_total_s"), "cpu_total": r.get("projected_cpu_s"),
        "step_cpu": med("step_cpu_s"), "failures": r.get("failures", []),
        "steps": r.get("steps"), "pick": r.get("pick"), "load": r.get("load_before"),
        # a training split of one batch: the only step timed is the first (tracing included)
        "first_only": any(x.get("steps_run", 2) < 2 for x in runs),
    }


def _f(v, d=1):
    return "-" if v is None else f"{v:,.{d}f}"


def _h(s):
    return "-" if s is None else (f"{s / 3600:,.1f} h" if s >= 3600 else f"{s / 60:,.1f} min")


def _ratio(a, b):
    return "-" if a in (None, 0) or b is None else f"{b / a:.1f}x"


FIRST_ONLY = " (1st step)"  # marks step numbers that include tracing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=Path, required=True)
    ap.add_argument("--large", type=Path, required=True)
    ap.add_argument("--labels", default="10 %,100 %")
    ap.add_argument("--out", type=Path, default=Path("reports/benchmarks/scale.md"))
    ap.add_argument("--preamble", type=Path, default=None)
    ap.add_argument("--epilogue", type=Path, default=None)
    args = ap.parse_args()
    from breastcam.reproduce import list_experiments

    small_label, large_label = args.labels.split(",")
    lines = ["# Rehearsals at scale: every experiment on full-size synthetic trees", ""]
    if args.preamble:
        lines += [args.preamble.read_text().rstrip(), ""]
    lines += ["| experiment | share | images | runs planned / rehearsed / failed | decode img/s | "
              "step s (median) | step CPU s | first batch s | peak RSS MB | cache MB (largest run) | "
              "best.keras MB | pre-flight + prepare s | projected full time | projected CPU time |",
              "|" + "---|" * 14]
    growth = ["", "## Growth from " + small_label + " to " + large_label, "",
              "| experiment | images | preflight + prepare | largest cache | peak RSS | step CPU s | "
              "projected CPU time | step s | projected full time |", "|" + "---|" * 9]
    failures = []
    for name, _, _ in list_experiments():
        pair = [_summary(_load(args.small, name)), _summary(_load(args.large, name))]
        for label, s in zip((small_label, large_label), pair):
            if s is None:
                lines.append(f"| {name} | {label} | not run | " + "- | " * 11)
            elif "nothing" in s:
                lines.append(f"| {name} | {label} | trains nothing of its own ({s['nothing']}) | "
                             + "- | " * 11)
            else:
                lines.append(
                    f"| {name} | {label} | {s['images']} | {s['planned']} / {s['measured']} / "
                    f"{s['failed']} | {_f(s['decode'])} | {_f(s['step'], 2)} | "
                    f"{_f(s['step_cpu'], 2)}{FIRST_ONLY if s['first_only'] else ''} | {_f(s['first'])} | "
                    f"{_f(s['rss'], 0)} | {_f(s['cache'], 0)} | {_f(s['ckpt'])} | {_f(s['prep'])} | "
                    f"{_h(s['total'])}" + (f" ({s['unprojected']} run(s) not projected)"
                                           if s["unprojected"] else "")
                    + f" | {_h(s['cpu_total'])} |")
                failures += [f"{name} ({label}) {f['id']}: {f['error']}" for f in s["failures"]]
        a, b = pair
        if a and b and "nothing" not in a and "nothing" not in b:
            growth.append(f"| {name} | {_ratio(a['images'], b['images'])} | "
                          f"{_ratio(a['prep'], b['prep'])} | {_ratio(a['cache'], b['cache'])} | "
                          f"{_ratio(a['rss'], b['rss'])} | {_ratio(a['step_cpu'], b['step_cpu'])} | "
                          f"{_ratio(a['cpu_total'], b['cpu_total'])} | {_ratio(a['step'], b['step'])} | "
                          f"{_ratio(a['total'], b['total'])}"
                          + (FIRST_ONLY + " at " + small_label if a["first_only"] else "") + " |")
    lines += growth + ["", f"`{FIRST_ONLY.strip()}`: the training split is one batch, so the one step "
                       "timed is the first, tracing included - an overestimate of the step cost "
                       "and of every ratio built on it. CPU columns: process CPU seconds (all "
                       "threads), independent of the machine's load; wall columns are not."]
    if failures:
        lines += ["", "Failed rehearsal runs:", ""] + [f"- {f}" for f in failures]
    if args.epilogue:
        lines += ["", args.epilogue.read_text().rstrip()]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
