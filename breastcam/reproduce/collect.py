"""Finished runs -> the long "reproduced" table the report compares with the published CSVs.

Columns: ``dataset, subset, protocol, model, metric, value, ci_low, ci_high, std, runs``
(metric names of ``experiments/README.md``), ``paper_value`` (the metric under the paper's own
definition, ``metrics.json``'s ``paper`` block; the mean of the per-run values over repeated
runs), ``ci_method`` and ``ci_decisive``. The interval is that of ``paper_value`` where there is
one (the number compared with the paper), else of ``value``. One run: the bootstrap 95 % CI from
``metrics.json``. Repeated runs (folds / seeds): the mean, the sample std, and a 95 % t-interval
of the mean over the runs, kept inside the metric's range and not decisive with fewer than 3 runs
(:func:`breastcam.evaluate.statistics.runs_interval`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from breastcam.evaluate.paper_metrics import paper_definition, paper_metric
from breastcam.evaluate.statistics import bootstrap_method, runs_interval

COLUMNS = ["dataset", "subset", "protocol", "model", "metric", "value", "ci_low", "ci_high",
           "std", "runs", "paper_value", "ci_method", "ci_decisive"]
# Experiment metric name -> metrics.json key, where they differ.
ALIASES = {"loss": "log_loss", "params": "n_params"}


def metric_value(metrics: Mapping[str, Any], name: str) -> float | None:
    """One experiment metric from a ``metrics.json`` dict (``None`` when it has none)."""
    if name == "f1_positive":  # papers B, C: F1 of the positive (last) class
        per = metrics.get("f1_per_class") or {}
        value = per.get(str(metrics.get("positive_class")))
    elif name == "convergence_time":
        value = metrics.get("seconds_to_best")
    else:
        value = metrics.get(ALIASES.get(name, name))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _ci(metrics: Mapping[str, Any], name: str, definition: str | None) -> tuple[float, float]:
    if definition is not None:
        interval = (((metrics.get("paper") or {}).get(definition) or {}).get("ci") or {}).get(name)
    else:
        interval = (metrics.get("ci") or {}).get(ALIASES.get(name, name))
    if isinstance(interval, (list, tuple)) and len(interval) == 2 and None not in interval:
        return float(interval[0]), float(interval[1])
    return math.nan, math.nan


def rows_from_metrics(per_run: Sequence[Mapping[str, Any]], metric_names: Sequence[str],
                      key: Mapping[str, str], paper: str | None = None) -> list[dict]:
    """Rows of one (dataset, subset, protocol, model) from the metrics of its runs.

    ``paper`` (A, B, C) selects the paper's metric definition for ``paper_value``.
    """
    k = len((per_run[0] if per_run else {}).get("class_names") or []) or 2
    definition = paper_definition(paper, k) if paper else None
    rows = []
    for name in metric_names:
        values = [v for v in (metric_value(m, name) for m in per_run) if v is not None]
        if not values:
            continue
        row = {**key, "metric": name, "runs": len(values)}
        paper_values = [v for v in (paper_metric(m, definition, name) for m in per_run)
                        if v is not None] if definition else []
        row["paper_value"] = float(np.mean(paper_values)) if paper_values else math.nan
        compared = paper_values or values
        if len(per_run) == 1:
            row["value"] = values[0]
            row["ci_low"], row["ci_high"] = _ci(per_run[0], name, definition if paper_values else None)
            row["std"] = math.nan
            row["ci_method"] = bootstrap_method(per_run[0]) if math.isfinite(row["ci_low"]) else ""
            row["ci_decisive"] = math.isfinite(row["ci_low"])
        else:
            row["value"] = float(np.mean(values))
            interval = runs_interval(compared, name)
            row["std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            row["ci_low"], row["ci_high"] = interval["low"], interval["high"]
            row["ci_method"], row["ci_decisive"] = interval["method"], interval["decisive"]
        rows.append(row)
    return rows


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def collect(plan, outcome) -> pd.DataFrame:
    """The reproduced table of an executed plan (one row per subset, protocol, model, metric)."""
    exp = plan.experiment
    metric_names = list(exp["evaluate"]["metrics"])
    rows: list[dict] = []
    for (subset, protocol, model), dirs in outcome.groups.items():
        key = {"dataset": exp["dataset"], "protocol": protocol, "model": model}
        if plan.report_by and subset == "all":
            per_value: dict[str, list[dict]] = {}
            for d in dirs:
                for value, m in _read(d / f"metrics_by_{plan.report_by}.json").items():
                    per_value.setdefault(str(value), []).append(m)
            for value, metrics in per_value.items():
                rows += rows_from_metrics(metrics, metric_names, {**key, "subset": value},
                                          exp.get("paper"))
        rows += rows_from_metrics([_read(d / "metrics.json") for d in dirs], metric_names,
                                  {**key, "subset": subset}, exp.get("paper"))
    return pd.DataFrame(rows, columns=COLUMNS)
