"""Issue 11: dala-params counts DALAResNet50 with the reduction each dataset's count implies."""

from __future__ import annotations

import pandas as pd
import pytest

from breastcam.report import load_experiment
from breastcam.reproduce.special import params_table

KERAS_MINUS_TORCH = 79_680


@pytest.mark.slow
def test_dala_params_reproduces_every_printed_dalaresnet50_count(tmp_path):
    exp = load_experiment("dala-params")
    params_table(exp, tmp_path, tmp_path / "dala-params", models=["dalaresnet50"], log=lambda _: None)
    rows = pd.read_csv(tmp_path / "dala-params" / "reproduced.csv")
    counts = rows[rows["metric"] == "params"].set_index("dataset")["value"]
    # 000 Table 7 (BreakHis, r = 4), 001 Table X (BACH 4 classes, Mini-DDSM 3 classes, r = 16)
    assert counts["breakhis"] == 25_611_842 + KERAS_MINUS_TORCH
    assert counts["bach"] == 24_042_692 + KERAS_MINUS_TORCH
    assert counts["miniddsm"] == 24_040_643 + KERAS_MINUS_TORCH
