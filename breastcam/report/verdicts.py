"""Which published rows no metric definition fits: solved once, shipped, looked up by the report.

A report marks a published row "internally inconsistent in the paper" when no candidate
definition reproduces it (:func:`breastcam.report.metric_solver.inconsistent_keys`). The answer
depends on the printed numbers alone, yet a multi-class row (BACH, Mini-DDSM, the mammograms)
costs seconds per definition in the rate search, so every report of such an experiment spent
a minute or more proving the same thing again. ``experiments/published_verdicts.json`` keeps the
answers, keyed by a hash of everything the search reads: the row's printed intervals, its test
set, the candidate definitions and the search's settings. A row whose key is not there (an
edited table, a new experiment, a changed search) is solved on the spot, as before.

Rewrite the file with ``python -m breastcam.report.verdicts``; ``tests/report`` fails when a
published row of a shipped experiment has no verdict in it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from breastcam.evaluate.paper_metrics import PAPER_DEFINITIONS, candidate_definitions
from breastcam.report import metric_solver as ms

FILE_NAME = "published_verdicts.json"


def row_key(row: Mapping, paper: str) -> str:
    """A hash of every input of :func:`~breastcam.report.metric_solver.row_fits` for this row."""
    test = ms.test_set(paper, row["dataset"], row["subset"])
    payload = {
        "paper": paper,
        "row": [str(row[k]) for k in ms.ROW_KEY],
        "bounds": {m: [round(float(x), 12) for x in b] for m, b in sorted(row["bounds"].items())},
        "test": {k: v for k, v in dataclasses.asdict(test).items() if k != "source"},
        "definitions": [repr(d) for d in candidate_definitions(test.n_classes, over_runs=False)],
        "rate_starts": ms.RATE_STARTS,
        "search": ms.test_set(paper, row["dataset"], row["subset"]).searched() if test.n_classes == 2
        and test.n is not None and test.shares is not None else "rates",
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:20]


@functools.lru_cache(maxsize=None)
def shipped() -> dict[str, dict]:
    """``{row key: verdict}`` from ``experiments/published_verdicts.json`` ({} when absent)."""
    from breastcam.resources import experiments_dir

    path = experiments_dir() / FILE_NAME
    return json.loads(path.read_text(encoding="utf-8"))["rows"] if path.is_file() else {}


def verdict(row: Mapping, paper: str) -> tuple[bool, str]:
    """``(fits, search method)``: the shipped answer, or the solver's when there is none."""
    known = shipped().get(row_key(row, paper))
    if known is not None:
        return bool(known["fits"]), str(known["method"])
    return ms.row_fits(row, paper)


def inconsistent_keys(published: pd.DataFrame, paper: str) -> dict[tuple[str, str, str], str]:
    """:func:`breastcam.report.metric_solver.inconsistent_keys`, answered from the shipped file."""
    return ms.inconsistent_keys(published, paper, verdict=verdict)


def experiment_rows(names: Sequence[str] | None = None) -> list[tuple[str, dict]]:
    """``(paper, row)`` of every published row the reports of these experiments can check."""
    from breastcam.report.experiment_spec import list_experiments, load_experiment, published_for

    out = []
    for name in names or [n for n, _, _ in list_experiments()]:
        experiment = load_experiment(name)
        paper = str(experiment.get("paper") or "")
        if paper not in PAPER_DEFINITIONS or not experiment.get("published"):
            continue
        published = published_for(experiment)
        if not published.empty:
            out += [(paper, row) for row in ms.rows_of(published)]
    return out


def solve_all(names: Sequence[str] | None = None, known: Mapping[str, dict] | None = None) -> dict[str, dict]:
    """``{row key: verdict}`` for :func:`experiment_rows`; answers in ``known`` are reused."""
    known = known or {}
    out: dict[str, dict] = {}
    for paper, row in experiment_rows(names):
        key = row_key(row, paper)
        if key in out:  # the same printed row in another experiment
            continue
        if key in known:
            out[key] = known[key]
            continue
        fits, method = ms.row_fits(row, paper)
        out[key] = {"paper": paper, **{k: str(row[k]) for k in ms.ROW_KEY},
                    "metrics": sorted(row["bounds"]), "fits": fits, "method": method}
        print(f"{paper} {row['dataset']} {row['subset']} {row['model']}: "
              f"{'fits' if fits else 'no definition fits'} ({method})", flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from breastcam.resources import experiments_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(experiments_dir() / FILE_NAME),
                        help="file to write (default: the shipped experiments/published_verdicts.json)")
    parser.add_argument("--fresh", action="store_true", help="solve every row again, reusing nothing")
    args = parser.parse_args(argv)
    rows = solve_all(known=None if args.fresh else shipped())
    document = {
        "about": "Published rows no single-run metric definition fits, keyed by a hash of the "
                 "search's inputs (breastcam/report/verdicts.py). Made by "
                 "`python -m breastcam.report.verdicts`; do not edit by hand.",
        "rows": dict(sorted(rows.items())),
    }
    Path(args.out).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    bad = sum(not v["fits"] for v in rows.values())
    print(f"{len(rows)} published rows, {bad} that no definition fits: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
