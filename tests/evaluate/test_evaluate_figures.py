"""Every figure is written as a real PNG file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from breastcam.evaluate import figures, reliability_curve

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("k", [2, 4])
def test_confusion_roc_reliability_pngs(tmp_path, k):
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, 100)
    p = rng.dirichlet(np.ones(k), 100)
    p[np.arange(100), y] += 1.0
    p /= p.sum(axis=1, keepdims=True)
    names = [f"class{i}" for i in range(k)]
    cm = np.bincount(y * k + p.argmax(1), minlength=k * k).reshape(k, k)
    paths = [
        figures.plot_confusion_matrix(cm, names, tmp_path / "cm.png"),
        figures.plot_roc(y, p, names, tmp_path / "roc.png"),
        figures.plot_reliability(reliability_curve(y, p, 15), tmp_path / "rel.png"),
    ]
    assert all(_is_png(path) for path in paths)


def test_history_curves_with_error_bars(tmp_path):
    rng = np.random.default_rng(1)
    runs = []
    for length in (6, 6, 4):  # the third run stopped early
        e = np.arange(length)
        runs.append(pd.DataFrame({"epoch": e, "loss": 1 / (e + 1) + rng.normal(0, .02, length),
                                  "accuracy": 1 - 0.5 / (e + 1), "val_loss": 1.2 / (e + 1),
                                  "val_accuracy": 0.9 - 0.4 / (e + 1)}))
    agg = figures.history_mean_std(runs)
    assert agg["n_runs"].tolist() == [3, 3, 3, 3, 2, 2]
    assert agg.loc[0, "accuracy_mean"] == pytest.approx(0.5) and agg.loc[0, "accuracy_std"] == 0
    assert agg.loc[5, "loss_mean"] == pytest.approx(np.mean([r.loss[5] for r in runs[:2]]))
    assert _is_png(figures.plot_history(runs, tmp_path / "curves.png"))
    assert _is_png(figures.plot_history(runs[0], tmp_path / "one.png"))
    with pytest.raises(ValueError, match="metrics"):
        figures.plot_history(pd.DataFrame({"epoch": [0], "lr": [1e-4]}), tmp_path / "x.png")
