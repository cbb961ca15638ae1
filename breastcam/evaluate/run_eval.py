"""Evaluate finished run directories: one run, a pair of runs, or a set of repeated runs.

- :func:`evaluate_run` loads the run's model, predicts the test split and writes
  ``predictions.csv``, ``metrics.json`` (keys: :mod:`breastcam.evaluate.metrics`) and the figures
  ``confusion_matrix.png``, ``roc.png``, ``reliability.png``, ``curves.png``. Another split
  (``split="val"``) writes ``predictions_val.csv``, ``metrics_val.json``, ``*_val.png``.
- :func:`compare_runs`: McNemar and DeLong between two runs on the same test images.
- :func:`aggregate_runs`: mean +- std over repeated runs / folds (``aggregate.csv``,
  ``aggregate.json``, ``history_aggregate.csv``, ``curves.png`` with error bars).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from breastcam.errors import DataError
from breastcam.evaluate import figures as figs
from breastcam.evaluate.calibration import reliability_curve
from breastcam.evaluate.metrics import (
    DEFAULT_ECE_BINS,
    DEFAULT_IBA_ALPHA,
    DEFAULT_IBA_SQUARED,
    classification_metrics,
)
from breastcam.evaluate.paper_metrics import paper_block, paper_definitions_for
from breastcam.evaluate.predict import read_predictions
from breastcam.evaluate.rundir import predict_run, read_json, read_run_config, suffix
from breastcam.evaluate.trust_report import add_trust_columns, sample_metrics, trust_metrics
from breastcam.runs import files
from breastcam.evaluate.statistics import (
    bootstrap_metrics,
    delong_test,
    flatten_metrics,
    mcnemar_test,
    mean_std,
)

TIMING_KEYS = ("best_epoch", "seconds_to_best", "total_seconds")


def output_paths(run_dir: str | Path, split: str = "test") -> dict[str, Path]:
    """Where :func:`evaluate_run` writes its files for ``split``."""
    run_dir, s = Path(run_dir), suffix(split)
    return {
        "predictions": run_dir / f"predictions{s}.csv",
        "metrics": run_dir / f"metrics{s}.json",
        "confusion_matrix": run_dir / f"confusion_matrix{s}.png",
        "roc": run_dir / f"roc{s}.png",
        "reliability": run_dir / f"reliability{s}.png",
        "risk_coverage": run_dir / f"risk_coverage{s}.png",
        "curves": run_dir / "curves.png",
    }


# --- one run ----------------------------------------------------------------------------------


def metrics_from_predictions(
    frame: pd.DataFrame,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    stratify: bool = False,
    iba_alpha: float = DEFAULT_IBA_ALPHA,
    iba_squared: bool = DEFAULT_IBA_SQUARED,
    ece_bins: int = DEFAULT_ECE_BINS,
) -> dict[str, Any]:
    """``classification_metrics`` of a predictions table, with bootstrap CIs (``ci``).

    Also the ``paper`` block: the metrics under the definitions the papers used
    (:data:`breastcam.evaluate.paper_metrics.PAPER_DEFINITIONS`), each with its own ``ci``.
    """
    y_true, y_prob, names = read_predictions(frame)
    out = classification_metrics(y_true, y_prob, class_names=names, iba_alpha=iba_alpha,
                                 iba_squared=iba_squared, ece_bins=ece_bins)
    definitions = paper_definitions_for(len(names))
    out["paper"] = paper_block(out["confusion_matrix"], definitions)
    if n_bootstrap:
        boot = bootstrap_metrics(y_true, y_prob, n_bootstrap=n_bootstrap, seed=seed,
                                 stratify=stratify, iba_alpha=iba_alpha, iba_squared=iba_squared,
                                 definitions=definitions)
        out["ci"] = boot.pop("ci")
        for name, ci in boot.pop("paper_ci", {}).items():
            out["paper"][name]["ci"] = ci
        out["bootstrap"] = boot
    return out


def grouped_metrics(frame: pd.DataFrame, column: str, **kwargs: Any) -> dict[str, dict]:
    """``{group value: metrics}`` of a predictions table split by one of its columns.

    ``kwargs`` go to :func:`metrics_from_predictions` (bootstrap and metric settings).
    """
    if column not in frame.columns:
        raise DataError(
            f"cannot group by {column!r}: the predictions have columns {', '.join(frame.columns)}"
        )
    return {str(value): metrics_from_predictions(part, **kwargs)
            for value, part in frame.groupby(column, sort=True)}


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    n_bootstrap: int = 1000,
    seed: int = 0,
    model_file: str = files.BEST,
    data_root: str | Path | None = None,
    batch_size: int | None = None,
    stratify: bool = False,
    iba_alpha: float = DEFAULT_IBA_ALPHA,
    iba_squared: bool = DEFAULT_IBA_SQUARED,
    ece_bins: int = DEFAULT_ECE_BINS,
    figures: bool = True,
    group_by: Sequence[str] = (),
    uncertainty: str | None = None,
) -> dict[str, Any]:
    """Predict a run's ``split`` with ``model_file`` and write predictions, metrics, figures.

    Returns the ``metrics.json`` dict: the metrics of :mod:`breastcam.evaluate.metrics`, ``ci``
    (percentile bootstrap, ``n_bootstrap`` resamples seeded by ``seed``), ``bootstrap`` (its
    settings), ``n_params``, the training time from ``timing.json`` (``best_epoch``,
    ``seconds_to_best``, ``total_seconds``) and ``run`` (directory, model, split, file).
    ``data_root`` overrides the config's ``data.root`` (a dataset moved since training).
    ``group_by`` names manifest columns (e.g. ``magnification``, for a model trained on all
    magnifications) whose groups get their own metrics in ``metrics_by_<column>.json``.
    """
    from breastcam.evaluate.uncertainty import parse_uncertainty

    parse_uncertainty(uncertainty)  # a bad --uncertainty fails before the slow prediction
    run_dir = Path(run_dir)
    frame, trained = predict_run(run_dir, split=split, model_file=model_file,
                                 data_root=data_root, batch_size=batch_size, uncertainty=uncertainty)
    paths = output_paths(run_dir, split)
    calibration = trained.calibration
    frame = add_trust_columns(frame, calibration)
    frame.to_csv(paths["predictions"], index=False, lineterminator="\n")
    out = metrics_from_predictions(frame, n_bootstrap=n_bootstrap, seed=seed, stratify=stratify,
                                   iba_alpha=iba_alpha, iba_squared=iba_squared, ece_bins=ece_bins)
    # Calibration, conformal sets and selective prediction (bootstrap intervals: at most 200
    # resamples, the ranking measures cost a sort each).
    out["trust"] = trust_metrics(frame, calibration, n_bootstrap=min(n_bootstrap, 200), seed=seed,
                                 ece_bins=ece_bins)
    for kind in ("tta", "mc"):  # test-time samples: the same measures on the mean of K samples
        if kind in frame.attrs:
            out["trust"][kind] = {**frame.attrs[kind], **sample_metrics(frame, kind, ece_bins=ece_bins)}
    out["n_params"] = int(trained.network.count_params())
    timing = read_json(run_dir / "timing.json")
    for key in TIMING_KEYS:
        if timing.get(key) is not None:
            out[key] = timing[key]
    cfg = read_run_config(run_dir)
    out["run"] = {"run_dir": str(run_dir), "model": (cfg.get("model") or {}).get("name"),
                  "split": split, "model_file": model_file, "seed": cfg.get("seed"),
                  "fold": (cfg.get("data") or {}).get("fold")}
    paths["metrics"].write_text(json.dumps(_json_safe(out), indent=2))
    for column in [group_by] if isinstance(group_by, str) else group_by:
        groups = grouped_metrics(frame, column, n_bootstrap=n_bootstrap, seed=seed, stratify=stratify,
                                 iba_alpha=iba_alpha, iba_squared=iba_squared, ece_bins=ece_bins)
        (run_dir / f"metrics{suffix(split)}_by_{column}.json").write_text(
            json.dumps(_json_safe(groups), indent=2))
    if figures:
        write_figures(run_dir, frame, out, split=split, ece_bins=ece_bins)
    return out


def write_figures(
    run_dir: str | Path, frame: pd.DataFrame, metrics: dict, *, split: str = "test",
    ece_bins: int = DEFAULT_ECE_BINS,
) -> list[Path]:
    """Confusion matrix, ROC, reliability diagram, risk-coverage curve and (if ``history.csv``)
    training curves."""
    run_dir, paths = Path(run_dir), output_paths(run_dir, split)
    y_true, y_prob, names = read_predictions(frame)
    label = f"{(metrics.get('run') or {}).get('model') or run_dir.name} ({split})"
    written = [
        figs.plot_confusion_matrix(metrics["confusion_matrix"], names, paths["confusion_matrix"],
                                   title=f"Confusion matrix: {label}"),
        figs.plot_roc(y_true, y_prob, names, paths["roc"], title=f"ROC: {label}"),
        figs.plot_reliability(reliability_curve(y_true, y_prob, ece_bins), paths["reliability"],
                              title=f"Reliability: {label}"),
    ]
    rc = (metrics.get("trust") or {}).get("risk_coverage")
    if rc:
        written.append(figs.plot_risk_coverage(rc["coverage"], rc["risk"], paths["risk_coverage"],
                                               aurc=metrics["trust"].get("aurc"), title=f"Risk-coverage: {label}"))
    history = run_dir / "history.csv"
    if history.is_file() and history.stat().st_size > 0:
        written.append(figs.plot_history(pd.read_csv(history), paths["curves"], title=run_dir.name))
    return written


def _json_safe(obj: Any) -> Any:
    # metrics.json must be strict JSON: NaN/inf -> null, numpy scalars -> Python.
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# --- two runs ---------------------------------------------------------------------------------


def _predictions(run_dir: Path, split: str) -> pd.DataFrame:
    path = output_paths(run_dir, split)["predictions"]
    if not path.is_file():
        evaluate_run(run_dir, split=split)
    return pd.read_csv(path, keep_default_na=False)


def _check_same_images(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> None:
    pa, pb = a["path"].astype(str).tolist(), b["path"].astype(str).tolist()
    if pa == pb:
        if not np.array_equal(a["truth_index"].to_numpy(), b["truth_index"].to_numpy()):
            i = int(np.flatnonzero(a["truth_index"].to_numpy() != b["truth_index"].to_numpy())[0])
            raise DataError(f"{name_a} and {name_b} disagree on the true class of {pa[i]}")
        return
    set_a, set_b = set(pa), set(pb)
    only_a = [p for p in pa if p not in set_b]
    only_b = [p for p in pb if p not in set_a]
    if only_a or only_b:
        raise DataError(
            f"{name_a} and {name_b} were not tested on the same images: "
            + (f"{len(only_a)} only in {name_a} (first: {only_a[0]})" if only_a else "")
            + ("; " if only_a and only_b else "")
            + (f"{len(only_b)} only in {name_b} (first: {only_b[0]})" if only_b else "")
        )
    if len(pa) != len(pb):
        raise DataError(f"{name_a} has {len(pa)} test rows, {name_b} {len(pb)} (duplicated paths?)")
    i = next(i for i, (x, y) in enumerate(zip(pa, pb)) if x != y)
    raise DataError(
        f"{name_a} and {name_b} list the same images in a different order: row {i} is {pa[i]} "
        f"in {name_a} but {pb[i]} in {name_b}"
    )


def compare_runs(
    run_a: str | Path, run_b: str | Path, *, split: str = "test", out: str | Path | None = None,
) -> dict[str, Any]:
    """Paired tests of two runs on the same test images (same paths, same order, else error).

    McNemar on correctness; DeLong on the AUC of the positive (last) class — for multi-class
    runs that is the positive class one-vs-rest (``delong["mode"]``). Evaluates a run whose
    predictions are missing. Writes ``out`` (JSON) when given.
    """
    run_a, run_b = Path(run_a), Path(run_b)
    fa, fb = _predictions(run_a, split), _predictions(run_b, split)
    _check_same_images(fa, fb, str(run_a), str(run_b))
    y_true, prob_a, names_a = read_predictions(fa)
    _, prob_b, names_b = read_predictions(fb)
    if names_a != names_b:
        raise DataError(f"{run_a} has classes {names_a} but {run_b} has {names_b}")
    pred_a, pred_b = prob_a.argmax(axis=1), prob_b.argmax(axis=1)
    pos = len(names_a) - 1
    result: dict[str, Any] = {
        "run_a": str(run_a), "run_b": str(run_b), "split": split, "n": int(len(y_true)),
        "accuracy_a": float(np.mean(pred_a == y_true)), "accuracy_b": float(np.mean(pred_b == y_true)),
        "mcnemar": mcnemar_test(y_true, pred_a, pred_b),
    }
    mode = "binary" if len(names_a) == 2 else "one_vs_rest"
    try:
        delong = delong_test(y_true == pos, prob_a[:, pos], prob_b[:, pos])
        result["delong"] = {"applicable": True, "mode": mode, "positive_class": names_a[pos], **delong}
    except ValueError as err:
        result["delong"] = {"applicable": False, "mode": mode, "reason": str(err)}
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(_json_safe(result), indent=2))
    return result


# --- repeated runs ----------------------------------------------------------------------------


def _run_metrics(run_dir: Path, split: str) -> dict:
    path = output_paths(run_dir, split)["metrics"]
    return json.loads(path.read_text()) if path.is_file() else evaluate_run(run_dir, split=split)


def _run_labels(run_dirs: Sequence[Path]) -> list[str]:
    # Column names of aggregate.csv: the run folder names (fold_0, seed_1 ...) when unique.
    labels = [p.name for p in run_dirs]
    if len(set(labels)) < len(labels):
        labels = [str(p) for p in run_dirs]
    reserved = {"metric", "mean", "std", "n", "min", "max"}
    return [f"run_{lab}" if lab in reserved else lab for lab in labels]


def aggregate_runs(
    run_dirs: Sequence[str | Path], out_dir: str | Path, *, split: str = "test"
) -> pd.DataFrame:
    """Mean +- std over repeated runs / folds of every metric in their ``metrics.json``.

    Evaluates runs without metrics. Writes to ``out_dir``: ``aggregate.csv`` (one row per
    metric: ``metric, mean, std, n, min, max`` and one column per run), ``aggregate.json``
    (the same plus the summed and mean confusion matrix), and, when the runs have
    ``history.csv``, ``history_aggregate.csv`` (per-epoch mean/std) and ``curves.png`` (train/val
    loss and accuracy with +- 1 std error bars). Returns the ``aggregate.csv`` table.
    """
    run_dirs = [Path(r) for r in run_dirs]
    if not run_dirs:
        raise DataError("aggregate_runs: no run directories given")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = [_run_metrics(r, split) for r in run_dirs]
    names = {tuple(m.get("class_names", [])) for m in metrics}
    if len(names) > 1:
        raise DataError(f"the runs have different classes {sorted(names)}: aggregate like with like")
    labels = _run_labels(run_dirs)
    stats = mean_std(metrics)
    flat = [flatten_metrics(m) for m in metrics]
    table = pd.DataFrame(
        [{"metric": k, **v, **{lab: f.get(k) for lab, f in zip(labels, flat)}} for k, v in stats.items()]
    )
    table.to_csv(out_dir / "aggregate.csv", index=False, lineterminator="\n")

    summary: dict[str, Any] = {"runs": [str(r) for r in run_dirs], "split": split,
                               "class_names": metrics[0].get("class_names"), "metrics": stats}
    cms = [np.asarray(m["confusion_matrix"], float) for m in metrics if "confusion_matrix" in m]
    if cms and len({c.shape for c in cms}) == 1:
        summary["confusion_matrix_sum"] = np.sum(cms, axis=0).astype(int).tolist()
        summary["confusion_matrix_mean"] = np.mean(cms, axis=0).tolist()
        summary["confusion_matrix_std"] = (np.std(cms, axis=0, ddof=1) if len(cms) > 1 else np.zeros_like(cms[0])).tolist()
    histories = [pd.read_csv(r / "history.csv") for r in run_dirs
                 if (r / "history.csv").is_file() and (r / "history.csv").stat().st_size > 0]
    if histories:
        figs.history_mean_std(histories).to_csv(out_dir / "history_aggregate.csv", index=False,
                                                   lineterminator="\n")
        figs.plot_history(histories, out_dir / "curves.png",
                             title=f"{len(histories)} runs: mean ± std")
        summary["n_histories"] = len(histories)
    (out_dir / "aggregate.json").write_text(json.dumps(_json_safe(summary), indent=2))
    return table
