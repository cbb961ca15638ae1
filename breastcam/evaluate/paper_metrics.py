"""The candidate metric definitions a paper may have used, computed from confusion matrices.

The papers print sensitivity, specificity, PPV, NPV, G-mean and IBA without saying how a
multi-class (or even a binary) problem was averaged. Each :class:`Definition` is one reading,
expressed through imbalanced-learn's ``average`` argument:

- ``average`` (sensitivity, specificity, PPV, NPV): ``binary`` (the last class is positive),
  ``abnormal`` (K > 2: the first class is negative, every other class merged into positive),
  ``macro`` / ``weighted`` (one-vs-rest per-class rates, unweighted / weighted by support),
  ``micro`` (one-vs-rest counts pooled);
- ``gmean_average``: imblearn's ``geometric_mean_score(average=...)``: ``multiclass`` is the
  geometric mean of the per-class recalls (imblearn's default), any other value is
  ``sqrt(sensitivity * specificity)`` under that averaging, except ``classmean``: the mean
  over classes of the per-class one-vs-rest G-means (and IBAs), tried for K > 2;
- IBA is ``make_index_balanced_accuracy(alpha, squared)(geometric_mean_score)``: dominance =
  sensitivity - specificity under the same averaging (imblearn turns ``multiclass`` into
  ``macro`` there, so for two classes the default call gives IBA = G-mean exactly);
- ``over_runs``: the printed number is the MEAN over runs / folds of the per-run values (mean of
  per-run G-means <= G-mean of the mean rates, Jensen), not the metric of one matrix.

:func:`definition_metrics` is vectorised over ``[B, K, K]`` matrices (the solver in
``breastcam.report.metric_solver`` evaluates thousands of candidate matrices at once);
:func:`paper_block` is the ``paper`` block of ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Sequence

import numpy as np

from breastcam.errors import ConfigError

AVERAGES = ("binary", "abnormal", "macro", "weighted", "micro")
# "classmean": the mean over classes of each class's one-vs-rest sqrt(sens_k * spec_k) (and of
# each class's IBA) -- what a per-class report averaged afterwards gives; not an imblearn option.
GMEAN_AVERAGES = AVERAGES + ("multiclass", "classmean")
# Metrics a definition gives (the experiment metric names of experiments/README.md).
PAPER_METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1_minority",
                 "f1_weighted", "f1_positive", "g_mean", "iba")
IBA_ALPHA = 0.1


@dataclasses.dataclass(frozen=True)
class Definition:
    """One reading of a paper's metrics (see the module docstring)."""

    average: str = "binary"
    gmean_average: str = "binary"
    iba_squared: bool = False
    over_runs: bool = False
    iba_alpha: float = IBA_ALPHA

    def __post_init__(self) -> None:
        if self.average not in AVERAGES:
            raise ConfigError(f"average {self.average!r}: choose from {AVERAGES}")
        if self.gmean_average not in GMEAN_AVERAGES:
            raise ConfigError(f"gmean_average {self.gmean_average!r}: choose from {GMEAN_AVERAGES}")

    @property
    def name(self) -> str:
        text = self.average if self.gmean_average == self.average else (
            f"{self.average}, G:{self.gmean_average}")
        if self.iba_squared:
            text += ", IBA squared"
        return f"mean over runs of [{text}]" if self.over_runs else text

    def single(self) -> "Definition":
        """The same definition for one run (``over_runs`` off)."""
        return dataclasses.replace(self, over_runs=False)

    def describe(self) -> str:
        """How the definition reads as imbalanced-learn calls."""
        g = ("geometric mean of the per-class recalls (imblearn average='multiclass')"
             if self.gmean_average == "multiclass" else
             "mean over classes of sqrt(sens_k*spec_k), one-vs-rest (IBA likewise per class)"
             if self.gmean_average == "classmean" else
             f"sqrt(sens*spec), both {self.gmean_average}-averaged (imblearn "
             f"average='{self.gmean_average}')")
        text = (f"sens/spec/PPV/NPV {self.average}-averaged; G-mean = {g}; IBA alpha "
                f"{self.iba_alpha:g}, squared={self.iba_squared}")
        return f"mean over runs of the per-run values: {text}" if self.over_runs else text


def parse_definition(name: str) -> Definition:
    """The :class:`Definition` whose :attr:`~Definition.name` is ``name``."""
    text, over = name.strip(), False
    if text.startswith("mean over runs of [") and text.endswith("]"):
        text, over = text[len("mean over runs of ["):-1], True
    parts = [p.strip() for p in text.split(",")]
    average, gmean, squared = parts[0], parts[0], False
    for part in parts[1:]:
        if part.startswith("G:"):
            gmean = part[2:]
        elif part == "IBA squared":
            squared = True
        else:
            raise ConfigError(f"metric definition {name!r}: unknown part {part!r}")
    return Definition(average, gmean, squared, over)


def candidate_definitions(n_classes: int, over_runs: bool = True) -> list[Definition]:
    """Every definition the solver tries for a ``n_classes`` problem."""
    averages = [a for a in AVERAGES if not (a == "abnormal" and n_classes == 2)]
    out = []
    for runs in ((False, True) if over_runs else (False,)):
        for average in averages:
            extra = ["classmean"] if n_classes > 2 else []
            for gmean in dict.fromkeys([average, "multiclass", *extra]):
                for squared in (False, True):
                    out.append(Definition(average, gmean, squared, runs))
    return out


def _div(num: np.ndarray, den: np.ndarray, undefined: float = 0.0) -> np.ndarray:
    """``num / den``, ``undefined`` where ``den`` is 0: 0 for precision-like ratios (sklearn's
    ``zero_division=0``), NaN for sensitivity / specificity (a rate of a class the matrix
    lacks is undefined, not 0; ``paper_block`` turns it into ``None``)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.full(num.shape, float(undefined)), where=den > 0)


def _rates(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    return {"sensitivity": _div(tp, tp + fn, np.nan), "specificity": _div(tn, tn + fp, np.nan),
            "ppv": _div(tp, tp + fp), "npv": _div(tn, tn + fn)}


def _ovr(cm: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-class one-vs-rest ``tp, fp, fn, tn`` ``[B, K]`` of ``cm [B, K, K]`` (rows = truth)."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    fp = cm.sum(axis=1) - tp
    fn = cm.sum(axis=2) - tp
    tn = cm.sum(axis=(1, 2))[:, None] - tp - fp - fn
    return tp, fp, fn, tn


def _merge_abnormal(cm: np.ndarray) -> np.ndarray:
    """``[B, 2, 2]``: class 0 against every other class merged (``abnormal`` averaging)."""
    out = np.empty(cm.shape[:1] + (2, 2))
    out[:, 0, 0] = cm[:, 0, 0]
    out[:, 0, 1] = cm[:, 0, 1:].sum(axis=1)
    out[:, 1, 0] = cm[:, 1:, 0].sum(axis=1)
    out[:, 1, 1] = cm[:, 1:, 1:].sum(axis=(1, 2))
    return out


def averaged_rates(cm: np.ndarray, average: str) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, PPV, NPV ``[B]`` of ``cm [B, K, K]`` under ``average``."""
    cm = np.asarray(cm, float)
    if average == "abnormal":
        cm, average = _merge_abnormal(cm), "binary"
    tp, fp, fn, tn = _ovr(cm)
    if average == "binary":
        pos = cm.shape[-1] - 1
        tp, fp, fn, tn = tp[:, pos], fp[:, pos], fn[:, pos], tn[:, pos]
        return _rates(tp, fp, fn, tn)
    if average == "micro":
        tp, fp, fn, tn = (v.sum(axis=1) for v in (tp, fp, fn, tn))
        return _rates(tp, fp, fn, tn)
    per = _rates(tp, fp, fn, tn)
    if average == "macro":
        return {k: v.mean(axis=1) for k, v in per.items()}
    if average == "weighted":  # imblearn/sklearn: weights = true samples per class
        w = tp + fn
        # a class without true samples has weight 0 (its undefined sensitivity drops out)
        return {k: _div((np.where(w > 0, v, 0.0) * w).sum(axis=1), w.sum(axis=1))
                for k, v in per.items()}
    raise ConfigError(f"average {average!r}: choose from {AVERAGES}")


def definition_metrics(cm: np.ndarray, definition: Definition,
                       metrics: Sequence[str] = PAPER_METRICS) -> dict[str, np.ndarray]:
    """``metrics`` (default: all of :data:`PAPER_METRICS`) ``[B]`` of ``cm [B, K, K]`` (or ``[K, K]``).

    Only the metrics asked for are computed (the solver filters millions of matrices one
    metric at a time).
    """
    cm = np.asarray(cm, float)
    if cm.ndim == 2:
        cm = cm[None]
    k = cm.shape[-1]
    if definition.average == "abnormal" and k < 3:
        raise ConfigError("the 'abnormal' averaging merges classes 1..K-1: it needs K > 2")
    unknown = set(metrics) - set(PAPER_METRICS)
    if unknown:
        raise ConfigError(f"no paper definition of {sorted(unknown)}; choose from {PAPER_METRICS}")
    need = set(metrics)
    out: dict[str, np.ndarray] = {}
    tp, fp, fn, _ = _ovr(cm)
    true = tp + fn
    if "accuracy" in need:
        out["accuracy"] = _div(tp.sum(axis=1), cm.sum(axis=(1, 2)))
    if need & {"f1_minority", "f1_weighted", "f1_positive"}:
        f1 = _div(2 * tp, 2 * tp + fp + fn)
        minority = np.argmin(np.where(true > 0, true, np.inf), axis=1)  # ties: lowest index
        out["f1_minority"] = f1[np.arange(len(cm)), minority]
        out["f1_weighted"] = _div((f1 * true).sum(axis=1), true.sum(axis=1))
        out["f1_positive"] = f1[:, k - 1]
    if need & {"sensitivity", "specificity", "ppv", "npv"}:
        out.update(averaged_rates(cm, definition.average))
    if need & {"g_mean", "iba"}:
        if definition.gmean_average == "classmean":
            tp_, fp_, fn_, tn_ = _ovr(cm)
            sens_k, spec_k = _div(tp_, tp_ + fn_, np.nan), _div(tn_, tn_ + fp_, np.nan)
            g_k = np.sqrt(sens_k * spec_k)
            out["g_mean"] = g_k.mean(axis=1)
            score_k = g_k**2 if definition.iba_squared else g_k
            out["iba"] = ((1.0 + definition.iba_alpha * (sens_k - spec_k)) * score_k).mean(axis=1)
            return {m: out[m] for m in metrics}
        if definition.gmean_average == "multiclass":
            with np.errstate(divide="ignore"):
                g = np.exp(np.mean(np.log(_div(tp, true, np.nan)), axis=1))
            dom_rates = averaged_rates(cm, "macro")  # imblearn: multiclass -> macro for IBA
        else:
            dom_rates = averaged_rates(cm, definition.gmean_average)
            g = np.sqrt(dom_rates["sensitivity"] * dom_rates["specificity"])
        dominance = dom_rates["sensitivity"] - dom_rates["specificity"]
        score = g**2 if definition.iba_squared else g
        out["g_mean"] = g
        out["iba"] = (1.0 + definition.iba_alpha * dominance) * score
    return {m: out[m] for m in metrics}


def paper_block(confusion: Sequence[Sequence[float]],
                definitions: Iterable[Definition | str]) -> dict[str, dict]:
    """``metrics.json``'s ``paper`` block: ``{definition name: {description, metrics}}``.

    ``over_runs`` definitions are computed for this one run (a mean over one run is the run's
    value); ``breastcam.reproduce`` averages the per-run values over folds / seeds.
    """
    cm = np.asarray(confusion, float)
    out = {}
    for d in definitions:
        d = parse_definition(d) if isinstance(d, str) else d
        values = definition_metrics(cm, d.single())
        out[d.name] = {"description": d.describe(),
                       "metrics": {m: float(values[m][0]) if np.isfinite(values[m][0]) else None
                                   for m in PAPER_METRICS}}
    return out


def paper_metric(metrics: Mapping, definition: str, metric: str) -> float | None:
    """One metric of ``metrics.json``'s ``paper`` block (``None`` when it is not there)."""
    block = ((metrics.get("paper") or {}).get(definition) or {}).get("metrics") or {}
    value = block.get(metric)
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


# Each paper's definition, per kind of problem: what breastcam.report.metric_solver.choose finds
# from the printed rows and the papers' own words (tests/report/test_report_metric_solver.py
# checks the two agree; docs/METRIC_DEFINITIONS.md shows the evidence). Paper A's multi-class
# entry: only its BACH Table XII rows fit any candidate, and only with sensitivity, specificity,
# PPV, NPV of Normal against the three other classes merged ("abnormal"); G-mean is its stated
# "geometric mean of class accuracies". Its Table VIII rows (accuracy, F1, G-mean, IBA) and all
# Mini-DDSM rows fit no candidate (docs/METRIC_DEFINITIONS.md).
PAPER_DEFINITIONS: dict[str, dict[str, str]] = {
    "A": {"binary": "binary, G:multiclass", "multiclass": "abnormal, G:multiclass"},
    "B": {"binary": "binary"},
    "C": {"binary": "binary"},
}


def problem_kind(n_classes: int) -> str:
    """``"binary"`` or ``"multiclass"``: the key of :data:`PAPER_DEFINITIONS`."""
    return "binary" if n_classes == 2 else "multiclass"


def paper_definition(paper: str, n_classes: int) -> str | None:
    """The definition paper ``paper`` (A, B, C) used for a ``n_classes`` problem, if known."""
    return PAPER_DEFINITIONS.get(str(paper), {}).get(problem_kind(n_classes))


def paper_definitions_for(n_classes: int) -> list[str]:
    """Every paper's definition for a ``n_classes`` problem (what ``metrics.json`` computes)."""
    kind = problem_kind(n_classes)
    return list(dict.fromkeys(d[kind] for d in PAPER_DEFINITIONS.values() if kind in d))
