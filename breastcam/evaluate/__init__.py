"""Evaluation of predictions and finished runs: metrics, statistics, calibration, figures.

Array functions (``classification_metrics``, ``bootstrap_metrics``, ``mcnemar_test``,
``delong_test`` ...) work on any predictions; ``evaluate_run``, ``compare_runs`` and
``aggregate_runs`` read and write run directories (docs/ARCHITECTURE.md). The keys of
``metrics.json`` are listed in :mod:`breastcam.evaluate.metrics`.
"""

from breastcam.evaluate.calibration import brier_score, expected_calibration_error, reliability_curve
from breastcam.evaluate.metrics import HEADLINE_METRICS, classification_metrics
from breastcam.evaluate.predict import predict_dataset, predictions_frame, read_predictions
from breastcam.evaluate.run_eval import (
    aggregate_runs,
    compare_runs,
    evaluate_run,
    grouped_metrics,
    metrics_from_predictions,
    write_figures,
)
from breastcam.evaluate.statistics import (
    bootstrap_ci,
    bootstrap_metrics,
    delong_roc_variance,
    delong_test,
    mcnemar_test,
    mean_std,
)

__all__ = [
    "HEADLINE_METRICS",
    "aggregate_runs",
    "bootstrap_ci",
    "bootstrap_metrics",
    "brier_score",
    "classification_metrics",
    "compare_runs",
    "delong_roc_variance",
    "delong_test",
    "evaluate_run",
    "expected_calibration_error",
    "grouped_metrics",
    "mcnemar_test",
    "mean_std",
    "metrics_from_predictions",
    "predict_dataset",
    "predictions_frame",
    "read_predictions",
    "reliability_curve",
    "write_figures",
]
