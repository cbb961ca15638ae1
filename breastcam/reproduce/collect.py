"""Finished runs -> the long "reproduced" table the report compares with the published CSVs.

Columns: ``dataset, subset, protocol, model, metric, value, ci_low, ci_high, std, runs``
(metric names of ``experiments/README.md``), ``paper_value`` (the metric under the paper's own
definition, ``metrics.json``'s ``paper`` block; the mean of the per-run values over repeated
runs), ``ci_method`` and ``ci_decisive``. The interval is that of ``paper_value`` where there is
one (the number compared with the paper), else of ``value``. One run: the bootstrap 95 % CI from
``metrics.json``. Repeated runs (folds / seeds): the mean, the sample std, and a 95 % t-interval
of the mean over the runs, kept inside the metric's range and not decisive with fewer than 3 runs
(:func:`breastcam.evaluate.statistics.runs_interval`), beside a percentile bootstrap over the
runs' pooled test predictions (:func:`breastcam.evaluate.statistics.pooled_bootstrap`, always
inside [0, 1]). A decisive t-interval is the one shown and judged; otherwise the pooled
bootstrap is; ``ci_method`` names the one shown and gives the other beside it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from breastcam.evaluate.paper_metrics import paper_definition, paper_metric
from breastcam.evaluate.predict import read_predictions
from breastcam.evaluate.statistics import bootstrap_method, pooled_bootstrap, runs_interval

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


def _pooled_as_metrics(pooled: Mapping[str, Any]) -> dict:
    """:func:`pooled_bootstrap`'s intervals in ``metrics.json``'s layout (for :func:`_ci`)."""
    return {"ci": pooled.get("ci") or {},
            "paper": {d: {"ci": ci} for d, ci in (pooled.get("paper_ci") or {}).items()}}


def _text(low: float, high: float) -> str:
    return f"[{low:.4f}, {high:.4f}]"


def rows_from_metrics(per_run: Sequence[Mapping[str, Any]], metric_names: Sequence[str],
                      key: Mapping[str, str], paper: str | None = None,
                      pooled: Mapping[str, Any] | None = None) -> list[dict]:
    """Rows of one (dataset, subset, protocol, model) from the metrics of its runs.

    ``paper`` (A, B, C) selects the paper's metric definition for ``paper_value``. ``pooled``
    (:func:`pooled_bootstrap` of the runs' predictions) gives repeated runs their bootstrap
    interval beside the t-interval.
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
            t_low, t_high, t_method = interval["low"], interval["high"], interval["method"]
            b_low, b_high = (_ci(_pooled_as_metrics(pooled), name, definition if paper_values
                                 else None) if pooled else (math.nan, math.nan))
            if interval["decisive"] or not math.isfinite(b_low):
                row["ci_low"], row["ci_high"] = t_low, t_high
                row["ci_method"], row["ci_decisive"] = t_method, interval["decisive"]
                if math.isfinite(b_low):
                    row["ci_method"] += f"; beside it, {pooled['method']}: {_text(b_low, b_high)}"
            else:
                row["ci_low"], row["ci_high"], row["ci_decisive"] = b_low, b_high, True
                row["ci_method"] = pooled["method"]
                if math.isfinite(t_low):
                    row["ci_method"] += f"; beside it, {t_method}: {_text(t_low, t_high)}"
        rows.append(row)
    return rows


def _definition(exp: Mapping[str, Any], per_run: Sequence[Mapping[str, Any]]) -> str | None:
    k = len((per_run[0] if per_run else {}).get("class_names") or []) or 2
    return paper_definition(exp["paper"], k) if exp.get("paper") else None


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def pooled_intervals(dirs: Sequence[Path], per_run: Sequence[Mapping[str, Any]],
                     definition: str | None, column: str | None = None,
                     value: str | None = None) -> dict | None:
    """:func:`pooled_bootstrap` of the ``predictions.csv`` of repeated runs (``None``: one run,
    or a run without predictions). ``column`` / ``value``: only the rows of one group (e.g. one
    magnification). Resamples and seed are those of the runs' own bootstrap."""
    paths = [Path(d) / "predictions.csv" for d in dirs]
    if len(paths) < 2 or not all(p.is_file() for p in paths):
        return None
    y_trues, y_probs = [], []
    for p in paths:
        frame = pd.read_csv(p)
        if column is not None:
            frame = frame[frame[column].astype(str) == str(value)]
        if frame.empty:
            return None
        y_true, y_prob, _ = read_predictions(frame)
        y_trues.append(y_true)
        y_probs.append(y_prob)
    boot = (per_run[0] if per_run else {}).get("bootstrap") or {}
    return pooled_bootstrap(y_trues, y_probs, n_bootstrap=int(boot.get("n_bootstrap") or 1000),
                            seed=int(boot.get("seed") or 0),
                            definitions=[definition] if definition else [])


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
                pooled = pooled_intervals(dirs, metrics, _definition(exp, metrics),
                                          plan.report_by, value)
                rows += rows_from_metrics(metrics, metric_names, {**key, "subset": value},
                                          exp.get("paper"), pooled)
        per_run = [_read(d / "metrics.json") for d in dirs]
        pooled = pooled_intervals(dirs, per_run, _definition(exp, per_run))
        rows += rows_from_metrics(per_run, metric_names, {**key, "subset": subset},
                                  exp.get("paper"), pooled)
    return pd.DataFrame(rows, columns=COLUMNS)
