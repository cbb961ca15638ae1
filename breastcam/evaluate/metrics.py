"""Classification metrics of one set of predictions, as a plain dict with stable keys.

``classification_metrics(y_true, y_prob)`` is what ``metrics.json`` holds. Its keys are read by
the report layer and the reproduce tables, so they do not change:

=========================  =====================================================================
key                        meaning
=========================  =====================================================================
``n``                      number of images
``class_names``            class order (index = ``label_index``)
``positive_class``         the class called positive for binary metrics: the LAST class
``minority_class``         the class with the fewest true samples (ties: the lower index)
``support``                ``{class: number of true samples}``
``accuracy``               ``sklearn.metrics.accuracy_score``
``balanced_accuracy``      ``sklearn.metrics.balanced_accuracy_score`` (mean recall)
``precision_per_class``    ``{class: precision}``; likewise ``recall_per_class``, ``f1_per_class``
``precision_macro``        unweighted mean over classes; ``recall_macro``, ``f1_macro`` likewise
``precision_weighted``     mean weighted by support; ``recall_weighted``, ``f1_weighted`` likewise
``f1_minority``            F1 of ``minority_class`` (paper A prints "f1_minority/f1_weighted")
``sensitivity``            binary: recall of the positive class; multi-class: one-vs-rest macro
``specificity``            binary: recall of the negative class; multi-class: one-vs-rest macro
``ppv``                    binary: precision of the positive class; multi-class: macro precision
``npv``                    binary: TN / (TN + FN) for the positive class; multi-class: OvR macro
``specificity_per_class``  ``{class: TN / (TN + FP)}`` one-vs-rest; ``npv_per_class`` likewise
``g_mean``                 ``imblearn.metrics.geometric_mean_score`` (geometric mean of recalls)
``iba``                    ``make_index_balanced_accuracy(alpha, squared)(geometric_mean_score)``
``roc_auc``                binary: AUC of the positive-class probability; multi-class: OvR macro
``roc_auc_per_class``      ``{class: one-vs-rest AUC}``
``ece``                    expected calibration error (top-label, equal-width bins)
``mce``                    maximum calibration error over the non-empty bins
``brier``                  mean over images and classes of (p - one_hot)^2 (see below)
``log_loss``               ``sklearn.metrics.log_loss``
``confusion_matrix``       list of lists, rows = truth, columns = prediction
``params``                 ``{iba_alpha, iba_squared, iba_average, ece_bins}`` used
``ci``                     added by :func:`breastcam.evaluate.statistics.bootstrap_metrics`:
                           ``{metric: [low, high]}`` for the headline metrics
``paper``                  added by :func:`breastcam.evaluate.run_eval.metrics_from_predictions`:
                           ``{definition: {description, metrics, ci}}``, the metrics under each
                           paper's own definition (:mod:`breastcam.evaluate.paper_metrics`)
=========================  =====================================================================

A metric that is undefined for the data (ROC-AUC when the truth holds one class) is ``None``.
So are sensitivity, specificity, G-mean and IBA when the test set lacks the class they divide
by (binary: no positives -> sensitivity, no negatives -> specificity; multi-class: a class
without true samples), with an ``UndefinedMetricWarning``: imbalanced-learn returns 0 there
(and, for a test set of negatives only, all predicted right, a specificity of 0 without a
warning), which a report would show as a real failure. Divisions by zero in precision-like
metrics (a class never predicted) count as 0, as sklearn's ``zero_division=0``.

IBA: for binary problems G-mean and the dominance (sensitivity - specificity) are those of the
positive class (imblearn ``average="binary", pos_label=<last class>``); for multi-class, imblearn's
``average="multiclass"`` (G-mean of the per-class recalls; dominance = macro sensitivity - macro
specificity). ``alpha=0.1, squared=False`` by default: with these the IBA stays close to the
G-mean, as in paper A's tables (SPEC section 3).

Brier score: the mean over classes of the one-hot squared error, ``mean_i mean_k (p_ik - y_ik)^2``.
For two classes this equals sklearn's ``brier_score_loss(y == positive, p_positive)``; for K
classes it is sklearn's multi-class ``brier_score_loss(y, p)`` (a sum over classes) divided by K,
so it stays in [0, 1] and comparable across class counts.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from imblearn.metrics import (
    geometric_mean_score,
    make_index_balanced_accuracy,
    sensitivity_specificity_support,
)
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    log_loss,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from breastcam.errors import DataError
from breastcam.evaluate.calibration import brier_score, reliability_curve

# Metrics that get a bootstrap confidence interval (and that reports show first).
HEADLINE_METRICS = (
    "accuracy",
    "f1_macro",
    "f1_weighted",
    "f1_minority",
    "sensitivity",
    "specificity",
    "roc_auc",
    "g_mean",
    "iba",
)

DEFAULT_IBA_ALPHA = 0.1
DEFAULT_IBA_SQUARED = False
DEFAULT_ECE_BINS = 15


def check_predictions(
    y_true: Any, y_prob: Any, class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate and normalise ``(y_true [N] int, y_prob [N, K] float64, class_names)``.

    ``y_prob`` may be a single column of positive-class probabilities (a sigmoid output); it is
    expanded to two columns ``[1 - p, p]``.
    """
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim == 1 or (y_prob.ndim == 2 and y_prob.shape[1] == 1):
        p = y_prob.reshape(-1)
        y_prob = np.stack([1.0 - p, p], axis=1)
    if y_prob.ndim != 2:
        raise DataError(f"y_prob must be [n_images, n_classes], got shape {y_prob.shape}")
    if y_true.ndim != 1 or len(y_true) != len(y_prob):
        raise DataError(
            f"y_true must be [n_images] matching y_prob {y_prob.shape}, got shape {y_true.shape}"
        )
    if len(y_true) == 0:
        raise DataError("no predictions to evaluate (0 images)")
    k = y_prob.shape[1]
    if not np.issubdtype(y_true.dtype, np.integer):
        if not np.all(np.mod(y_true, 1) == 0):
            raise DataError("y_true must hold integer class indices (label_index)")
        y_true = y_true.astype(np.int64)
    if y_true.min() < 0 or y_true.max() >= k:
        raise DataError(f"y_true holds class indices outside 0..{k - 1} (y_prob has {k} columns)")
    if not np.all(np.isfinite(y_prob)):
        raise DataError("y_prob holds NaN or infinite values (a diverged model?)")
    if np.any(np.abs(y_prob.sum(axis=1) - 1.0) > 1e-3):
        raise DataError(
            "y_prob rows must be probabilities summing to 1 (the models output softmax); "
            "apply a softmax to logits first"
        )
    if class_names is None:
        class_names = [str(i) for i in range(k)]
    class_names = [str(c) for c in class_names]
    if len(class_names) != k:
        raise DataError(f"{len(class_names)} class names given for {k} probability columns")
    return y_true.astype(np.int64), y_prob, class_names


def minority_index(y_true: np.ndarray, n_classes: int) -> int:
    """Index of the class with the fewest true samples (among those present; ties: lowest)."""
    counts = np.bincount(y_true, minlength=n_classes).astype(float)
    counts[counts == 0] = np.inf
    return int(np.argmin(counts))


def iba_score(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    *,
    alpha: float = DEFAULT_IBA_ALPHA,
    squared: bool = DEFAULT_IBA_SQUARED,
) -> float:
    """Index balanced accuracy of the G-mean (imblearn), with the averaging described above."""
    iba_gmean = make_index_balanced_accuracy(alpha=alpha, squared=squared)(geometric_mean_score)
    return float(iba_gmean(y_true, y_pred, **_gmean_average(n_classes)))


def _gmean_average(n_classes: int) -> dict:
    if n_classes == 2:
        return {"labels": [0, 1], "average": "binary", "pos_label": 1}
    return {"labels": list(range(n_classes)), "average": "multiclass"}


def undefined_rates(true_counts: np.ndarray) -> set[str]:
    """Which of sensitivity, specificity, G-mean, IBA the class counts leave undefined (0/0).

    ``true_counts [K]``: true samples per class. Binary: sensitivity needs positives (the last
    class), specificity negatives. Multi-class (one-vs-rest macro, G-mean of the recalls):
    every class needs true samples; a class holding every sample leaves the others' recalls
    undefined anyway. G-mean and IBA need both rates.
    """
    true_counts = np.asarray(true_counts)
    if len(true_counts) == 2:
        out = {"sensitivity"} if true_counts[1] == 0 else set()
        out |= {"specificity"} if true_counts[0] == 0 else set()
    else:
        out = {"sensitivity", "specificity"} if np.any(true_counts == 0) else set()
    return out | ({"g_mean", "iba"} if out else set())


def _per_class(names: Sequence[str], values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(names, values)}


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def classification_metrics(
    y_true: Any,
    y_prob: Any,
    *,
    class_names: Sequence[str] | None = None,
    y_pred: Any = None,
    iba_alpha: float = DEFAULT_IBA_ALPHA,
    iba_squared: bool = DEFAULT_IBA_SQUARED,
    ece_bins: int = DEFAULT_ECE_BINS,
) -> dict[str, Any]:
    """Every metric of ``metrics.json`` (see the module docstring) for one prediction set.

    ``y_true``: class indices [N]; ``y_prob``: probabilities [N, K] (softmax output);
    ``y_pred``: predicted indices, default ``argmax(y_prob)``. The positive class of binary
    metrics is the last one (malignant / abnormal / cancer in every dataset's class order).
    """
    y_true, y_prob, names = check_predictions(y_true, y_prob, class_names)
    k = y_prob.shape[1]
    y_pred = np.argmax(y_prob, axis=1) if y_pred is None else np.asarray(y_pred, dtype=np.int64)
    labels = list(range(k))
    pos = k - 1
    binary = k == 2

    with warnings.catch_warnings():  # one-class test sets: sklearn warns, the value stands
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(y_true, y_pred))
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "class_names": names,
        "positive_class": names[pos],
        "minority_class": names[minority_index(y_true, k)],
        "support": {n: int(s) for n, s in zip(names, support)},
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced,
    }
    for name, values in (("precision", prec), ("recall", rec), ("f1", f1)):
        out[f"{name}_per_class"] = _per_class(names, values)
    for avg in ("macro", "weighted"):
        averaged = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=0
        )
        for name, value in zip(("precision", "recall", "f1"), averaged):
            out[f"{name}_{avg}"] = float(value)
    out["f1_minority"] = out["f1_per_class"][out["minority_class"]]

    # One-vs-rest counts per class: [[TN, FP], [FN, TP]].
    mcm = multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    tn, fp, fn = mcm[:, 0, 0], mcm[:, 0, 1], mcm[:, 1, 0]
    spec_k = _safe_div(tn, tn + fp)
    npv_k = _safe_div(tn, tn + fn)
    out["specificity_per_class"] = _per_class(names, spec_k)
    out["npv_per_class"] = _per_class(names, npv_k)
    undefined = undefined_rates(support)
    with warnings.catch_warnings():  # imblearn's "set to 0.0" warnings: replaced by ours below
        if undefined:
            warnings.simplefilter("ignore", UndefinedMetricWarning)
        if binary:
            sens, spec, _ = sensitivity_specificity_support(
                y_true, y_pred, labels=labels, pos_label=pos, average="binary"
            )
            out.update(sensitivity=float(sens), specificity=float(spec), ppv=float(prec[pos]),
                       npv=float(npv_k[pos]))
        else:
            sens, spec, _ = sensitivity_specificity_support(
                y_true, y_pred, labels=labels, average="macro"
            )
            out.update(sensitivity=float(sens), specificity=float(spec), ppv=float(np.mean(prec)),
                       npv=float(np.mean(npv_k)))
        out["g_mean"] = float(geometric_mean_score(y_true, y_pred, **_gmean_average(k)))
        out["iba"] = iba_score(y_true, y_pred, k, alpha=iba_alpha, squared=iba_squared)
    if undefined:
        absent = [n for n, c in zip(names, support) if c == 0]
        warnings.warn(f"{', '.join(sorted(undefined))} undefined: the test set has no images of "
                      f"class(es) {absent} (0/0); reported as None, not imbalanced-learn's 0",
                      UndefinedMetricWarning, stacklevel=2)
        if binary:  # the rate that IS defined, from the counts (imblearn may give 0 here)
            out["sensitivity"], out["specificity"] = float(rec[pos]), float(spec_k[pos])
        out.update(dict.fromkeys(undefined))

    aucs = [
        float(roc_auc_score(y_true == c, y_prob[:, c])) if 0 < support[c] < len(y_true) else None
        for c in labels
    ]
    out["roc_auc_per_class"] = dict(zip(names, aucs))
    if binary:
        out["roc_auc"] = aucs[pos]
    else:
        # sklearn's multi_class="ovr", average="macro" is exactly this mean; computing it per
        # class avoids its strict sum-to-one check on float32 softmax outputs.
        out["roc_auc"] = None if any(a is None for a in aucs) else float(np.mean(aucs))

    curve = reliability_curve(y_true, y_prob, n_bins=ece_bins)
    out["ece"] = curve["ece"]
    out["mce"] = curve["mce"]
    out["brier"] = brier_score(y_true, y_prob)
    # float32 softmax rows sum to 1 only within ~1e-7, which sklearn's log_loss warns about.
    out["log_loss"] = float(log_loss(y_true, y_prob / y_prob.sum(axis=1, keepdims=True), labels=labels))
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    out["params"] = {
        "iba_alpha": float(iba_alpha),
        "iba_squared": bool(iba_squared),
        "iba_average": _gmean_average(k)["average"],
        "ece_bins": int(ece_bins),
    }
    return out


def confusion_metrics(
    cm: np.ndarray,
    *,
    minority: int,
    iba_alpha: float = DEFAULT_IBA_ALPHA,
    iba_squared: bool = DEFAULT_IBA_SQUARED,
) -> dict[str, np.ndarray]:
    """The confusion-matrix metrics of :func:`classification_metrics`, vectorised over a batch.

    ``cm`` is ``[B, K, K]`` (rows = truth) of counts, e.g. one per bootstrap resample. This is
    the bootstrap's fast path: 1,000 resamples through sklearn/imblearn cost ~20 s per run,
    through this ~20 ms. ``tests/evaluate`` checks that both agree exactly.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim == 2:
        cm = cm[None]
    k = cm.shape[-1]
    total = cm.sum(axis=(1, 2))
    tp = np.diagonal(cm, axis1=1, axis2=2)
    true = cm.sum(axis=2)
    pred = cm.sum(axis=1)
    fp, fn = pred - tp, true - tp
    tn = total[:, None] - tp - fp - fn
    rec = _safe_div(tp, true)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    spec_k = _safe_div(tn, tn + fp)
    out = {
        "accuracy": tp.sum(axis=1) / total,
        "f1_macro": f1.mean(axis=1),
        "f1_weighted": _safe_div((f1 * true).sum(axis=1), true.sum(axis=1)),
        "f1_minority": f1[:, minority],
    }
    with np.errstate(divide="ignore"):
        gmean_multi = np.exp(np.mean(np.log(rec), axis=1))
    if k == 2:
        sens, spec = rec[:, 1], rec[:, 0]
        gmean = np.sqrt(sens * spec)
    else:
        sens, spec = rec.mean(axis=1), spec_k.mean(axis=1)
        gmean = gmean_multi
    score = gmean**2 if iba_squared else gmean
    out.update(
        sensitivity=sens,
        specificity=spec,
        g_mean=gmean_multi,  # for K = 2 equal to sqrt(sens * spec)
        iba=(1.0 + iba_alpha * (sens - spec)) * score,
    )
    for b in np.flatnonzero((true == 0).any(axis=1)):  # as classification_metrics: undefined
        for m in undefined_rates(true[b]):
            out[m][b] = np.nan
    return out
