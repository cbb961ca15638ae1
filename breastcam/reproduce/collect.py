"""Finished runs -> the long "reproduced" table the report compares with the published CSVs.

Columns: ``dataset, subset, protocol, model, metric, value, ci_low, ci_high, std, runs``
(metric names of ``experiments/README.md``). One run: the value and its bootstrap 95 % CI from
``metrics.json``. Repeated runs (folds / seeds): the mean, the sample std, and a 95 % t-interval
of the mean over the runs (the spread of the protocol, not of one test set).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

COLUMNS = ["dataset", "subset", "protocol", "model", "metric", "value", "ci_low", "ci_high",
           "std", "runs"]
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


def _ci(metrics: Mapping[str, Any], name: str) -> tuple[float, float]:
    interval = (metrics.get("ci") or {}).get(ALIASES.get(name, name))
    if isinstance(interval, (list, tuple)) and len(interval) == 2 and None not in interval:
        return float(interval[0]), float(interval[1])
    return math.nan, math.nan


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """(std, low, high): sample std and the 95 % t-interval of the mean."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return 0.0, math.nan, math.nan
    std = float(np.std(values, ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    mean = float(np.mean(values))
    return std, mean - half, mean + half


def rows_from_metrics(per_run: Sequence[Mapping[str, Any]], metric_names: Sequence[str],
                      key: Mapping[str, str]) -> list[dict]:
    """Rows of one (dataset, subset, protocol, model) from the metrics of its runs."""
    rows = []
    for name in metric_names:
        values = [v for v in (metric_value(m, name) for m in per_run) if v is not None]
        if not values:
            continue
        row = {**key, "metric": name, "runs": len(values)}
        if len(per_run) == 1:
            row["value"] = values[0]
            row["ci_low"], row["ci_high"] = _ci(per_run[0], name)
            row["std"] = math.nan
        else:
            arr = np.asarray(values, dtype=float)
            row["value"] = float(arr.mean())
            row["std"], row["ci_low"], row["ci_high"] = _t_interval(arr)
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
                rows += rows_from_metrics(metrics, metric_names, {**key, "subset": value})
        rows += rows_from_metrics([_read(d / "metrics.json") for d in dirs], metric_names,
                                  {**key, "subset": subset})
    return pd.DataFrame(rows, columns=COLUMNS)
