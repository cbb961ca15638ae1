"""How stable a ranking of CAM methods is across faithfulness settings (Kendall's tau).

Deletion's score depends on its steps and baseline, and ROAD was proposed because deletion leaks
the removed region's shape (xplique warns settings "may drastically change the score"). Given each
method's mean score under each setting, :func:`rank_stability` ranks the methods per setting and
compares every pair of settings with Kendall's tau-b (scipy): 1 = the same order, -1 = reversed.
Scores are oriented first so that higher is better (deletion and ROAD MoRF areas are negated).
"""

from __future__ import annotations

import itertools

import pandas as pd
from scipy.stats import kendalltau

# score name -> +1 when higher is better, -1 when lower is better
ORIENTATION = {"deletion_auc": -1, "insertion_auc": 1, "road_morf": -1, "road_lerf": 1, "road_gap": 1}


def oriented(scores: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """``scores`` (index: method, columns: setting) with each setting multiplied by the
    orientation of its kind (``kinds[setting]`` names a key of :data:`ORIENTATION`)."""
    return scores.apply(lambda col: col * ORIENTATION[kinds[col.name]])


def rank_stability(scores: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau between the method rankings of every pair of settings (columns of the
    already-oriented ``scores``): ``setting_a, setting_b, tau, p_value, methods``."""
    rows = []
    for a, b in itertools.combinations(scores.columns, 2):
        both = scores[[a, b]].dropna()
        if len(both) < 2:
            tau, p = float("nan"), float("nan")
        else:
            res = kendalltau(both[a], both[b])
            tau, p = float(res.statistic), float(res.pvalue)
        rows.append({"setting_a": a, "setting_b": b, "tau": tau, "p_value": p, "methods": len(both)})
    return pd.DataFrame(rows, columns=["setting_a", "setting_b", "tau", "p_value", "methods"])
