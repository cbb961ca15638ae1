"""Figures of a run as PNG files: confusion matrix, ROC, training curves, reliability diagram.

Every function draws on its own ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot, no
global backend switch, so it is safe in notebooks, threads and on headless machines), writes
``path`` and returns it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import roc_auc_score, roc_curve

from breastcam.errors import DataError

DPI = 120


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kwargs):
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_confusion_matrix(
    cm: Any, class_names: Sequence[str], path: str | Path, *, title: str = "Confusion matrix"
) -> Path:
    """Counts with row percentages (share of each true class); rows = truth."""
    cm = np.asarray(cm, dtype=np.float64)
    k = len(class_names)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    side = 2.2 + 0.9 * k
    fig, axes = _figure(side + 1.0, side)
    ax = axes[0, 0]
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    for i in range(k):
        for j in range(k):
            count = int(cm[i, j]) if float(cm[i, j]).is_integer() else f"{cm[i, j]:.1f}"
            ax.text(j, i, f"{count}\n{share[i, j]:.0%}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(k), class_names, rotation=30, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def plot_roc(
    y_true: Any, y_prob: Any, class_names: Sequence[str], path: str | Path,
    *, title: str = "ROC"
) -> Path:
    """Binary: the ROC of the positive (last) class. Multi-class: one one-vs-rest curve each."""
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    k = y_prob.shape[1]
    fig, axes = _figure(5.2, 4.8)
    ax = axes[0, 0]
    classes = [k - 1] if k == 2 else list(range(k))
    for c in classes:
        truth = y_true == c
        if truth.all() or not truth.any():
            continue  # ROC undefined for a class that is all or nothing
        fpr, tpr, _ = roc_curve(truth, y_prob[:, c])
        auc = roc_auc_score(truth, y_prob[:, c])
        label = f"{class_names[c]} (AUC {auc:.3f})" if k > 2 else f"AUC {auc:.3f}"
        ax.plot(fpr, tpr, lw=1.6, label=label)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    if k == 2:
        ax.set_title(f"{title}: {class_names[1]} vs {class_names[0]}")
    else:
        ax.set_title(f"{title} (one-vs-rest)")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_reliability(curve: Mapping[str, Any], path: str | Path, *, title: str = "Reliability") -> Path:
    """Reliability diagram from :func:`breastcam.evaluate.calibration.reliability_curve`."""
    lower = np.asarray(curve["bin_lower"])
    upper = np.asarray(curve["bin_upper"])
    width = upper - lower
    acc = np.array([np.nan if a is None else a for a in curve["accuracy"]], dtype=float)
    conf = np.array([np.nan if c is None else c for c in curve["confidence"]], dtype=float)
    count = np.asarray(curve["count"], dtype=float)
    fig, axes = _figure(5.0, 5.6, nrows=2, gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax, hist = axes[0, 0], axes[1, 0]
    ax.bar(lower, np.nan_to_num(acc), width=width, align="edge", edgecolor="k", lw=0.5,
           color="tab:blue", label="accuracy")
    ax.bar(lower, np.nan_to_num(conf - acc), bottom=np.nan_to_num(acc), width=width,
           align="edge", facecolor=(0.84, 0.15, 0.16, 0.2), edgecolor="tab:red", hatch="//",
           lw=0.5, label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ece = curve.get("ece")
    ax.set_title(f"{title} (ECE {ece:.3f})" if ece is not None else title)
    ax.legend(loc="upper left", fontsize=8)
    hist.bar(lower, count, width=width, align="edge", color="grey", edgecolor="k", lw=0.5)
    hist.set_xlabel("confidence (top-class probability)")
    hist.set_ylabel("images")
    return _save(fig, path)


def plot_risk_coverage(coverage: Sequence[float], risk: Sequence[float], path: str | Path, *,
                       aurc: float | None = None, title: str = "Risk-coverage") -> Path:
    """Error rate among the accepted images against the share accepted, most confident first
    (selective prediction); the dashed line is the overall error rate."""
    coverage, risk = np.asarray(coverage, dtype=float), np.asarray(risk, dtype=float)
    fig, axes = _figure(5.0, 3.8)
    ax = axes[0, 0]
    ax.plot(coverage, risk, color="tab:blue", lw=1.5)
    if len(risk):
        ax.axhline(risk[-1], ls="--", c="grey", lw=0.8, label=f"all images: {risk[-1]:.3f}")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(0.05, float(np.nanmax(risk)) * 1.1) if len(risk) else 1)
    ax.set_xlabel("coverage (share of images accepted, most confident first)")
    ax.set_ylabel("risk (error rate among accepted)")
    ax.set_title(f"{title} (AURC {aurc:.3f})" if aurc is not None else title)
    return _save(fig, path)


def history_mean_std(histories: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per-epoch mean and std (ddof = 1) of every numeric column over several history tables.

    Columns: ``epoch``, ``n_runs``, then ``<col>_mean`` and ``<col>_std`` for each history
    column. Runs that stopped early simply contribute to fewer epochs (``n_runs`` drops).
    """
    frames = []
    for i, h in enumerate(histories):
        h = h.copy()
        if "epoch" not in h:
            h["epoch"] = np.arange(len(h))
        h["_run"] = i
        frames.append(h)
    if not frames:
        raise DataError("no training histories to aggregate")
    long = pd.concat(frames, ignore_index=True)
    cols = [c for c in long.columns if c not in ("epoch", "_run") and pd.api.types.is_numeric_dtype(long[c])]
    grouped = long.groupby("epoch")
    out = pd.DataFrame({"epoch": sorted(long["epoch"].unique())}).set_index("epoch")
    out["n_runs"] = grouped["_run"].nunique()
    for c in cols:
        out[f"{c}_mean"] = grouped[c].mean()
        out[f"{c}_std"] = grouped[c].std(ddof=1).fillna(0.0)
    return out.reset_index()


def plot_history(
    histories: pd.DataFrame | Sequence[pd.DataFrame],
    path: str | Path,
    *,
    metrics: Sequence[str] = ("loss", "accuracy"),
    title: str = "",
) -> Path:
    """Train and validation curves per epoch, one panel per metric (papers' Figs 8-9).

    Given several histories (repeated runs or folds), draws the mean with +- 1 std error bars.
    Epochs are shown 1-based, as Keras prints them.
    """
    if isinstance(histories, pd.DataFrame):
        histories = [histories]
    agg = history_mean_std(histories)
    metrics = [m for m in metrics if f"{m}_mean" in agg or f"val_{m}_mean" in agg]
    if not metrics:
        raise DataError("the history has none of the metrics to plot (loss, accuracy ...)")
    fig, axes = _figure(4.6 * len(metrics), 3.8, ncols=len(metrics))
    repeated = len(histories) > 1
    x = agg["epoch"].to_numpy() + 1
    for ax, metric in zip(axes[0], metrics):
        for col, label, color in ((metric, "train", "tab:blue"), (f"val_{metric}", "validation", "tab:orange")):
            if f"{col}_mean" not in agg:
                continue
            y, err = agg[f"{col}_mean"], agg[f"{col}_std"]
            if repeated:
                ax.errorbar(x, y, yerr=err, label=label, color=color, lw=1.4, capsize=2, elinewidth=0.8)
            else:
                ax.plot(x, y, label=label, color=color, lw=1.4)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.set_title(metric + (f" (mean ± std, {len(histories)} runs)" if repeated else ""))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
