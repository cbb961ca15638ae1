"""The published-vs-reproduced table of an experiment, and a Markdown writer for any table.

``comparison_table`` joins the papers' numbers (``breastcam.report.published``) with the
reproduced ones on ``(dataset, subset, model, metric)``. Subsets are compared as text with a
trailing ``X`` dropped and empty meaning ``all``, so ``40``, ``"40"`` and ``"40X"`` meet.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from breastcam.errors import ConfigError

KEY = ["dataset", "subset", "model", "metric"]
COMPARISON_COLUMNS = KEY + ["protocol", "published", "printed", "source", "reproduced",
                            "paper_definition", "ci_low", "ci_high", "ci_method", "difference",
                            "published_in_ci", "paper_check"]
INCONSISTENT = "internally inconsistent in the paper"


def normalise_subset(value: Any) -> str:
    """``40``, ``40.0``, ``"40"``, ``"40X"`` -> ``"40"``; empty / None / NaN -> ``"all"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "all"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        return "all"
    if text[-1] in "xX" and text[:-1].isdigit():
        text = text[:-1]
    return text


def _keyed(df: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [c for c in KEY if c not in df.columns]
    if missing:
        raise ConfigError(f"{what} table lacks column(s) {missing}; it needs {KEY}")
    out = df.copy()
    out["subset"] = out["subset"].map(normalise_subset)
    for col in ("dataset", "model", "metric"):
        out[col] = out[col].fillna("").astype(str)
    return out


def comparison_table(published: pd.DataFrame, reproduced: pd.DataFrame,
                     inconsistent: Iterable[tuple[str, str, str]] | Mapping = ()) -> pd.DataFrame:
    """Published beside reproduced numbers, one row per (dataset, subset, model, metric[, protocol]).

    ``published``: rows of the published CSVs (``value``, optional ``printed``, ``paper``,
    ``table``). ``reproduced``: ``dataset, subset, model, metric`` and ``value`` (or
    ``reproduced`` / ``mean``), optionally ``ci_low``, ``ci_high`` and ``protocol`` (one row per
    protocol: the published number is repeated beside each).

    ``reproduced`` may also hold ``paper_value`` (the metric under the paper's own definition),
    ``ci_method`` (how the interval was made) and ``ci_decisive`` (False: the interval must not
    judge the published number, e.g. a t-interval over 2 runs). ``inconsistent`` lists the
    published rows ``(dataset, subset, model)`` that no metric definition reproduces
    (``breastcam.report.metric_solver``).

    Columns: ``dataset, subset, model, metric, protocol, published, printed, source,
    reproduced, paper_definition, ci_low, ci_high, ci_method, difference`` (the like-defined
    number - published: ``paper_definition`` where there is one, else ``reproduced``),
    ``published_in_ci`` (True / False; missing where there is no interval, where it is not
    decisive or leaves the metric's range) and ``paper_check`` ("internally inconsistent in the
    paper" for the ``inconsistent`` rows). Rows found on one side only are kept
    with the other side missing. Rows are grouped by dataset, then subset (magnifications in
    numeric order, ``all`` last); within a group models and metrics keep the order in which they
    first appear (published rows first), protocols the reproduced order.
    """
    pub = _keyed(published, "published")
    if "value" not in pub.columns:
        raise ConfigError("published table lacks column 'value'")
    pub = pub.rename(columns={"value": "published"})
    if "printed" not in pub.columns:
        pub["printed"] = ""
    if {"paper", "table"} <= set(pub.columns):
        pub["source"] = "paper " + pub["paper"].astype(str) + " Table " + pub["table"].astype(str)
    else:
        pub["source"] = ""
    # A number printed by two tables (paper 001 Table VII repeats paper 000 Table 6) counts once.
    pub = (pub.groupby(KEY + ["published"], sort=False, dropna=False)
              .agg(printed=("printed", "first"), source=("source", lambda s: "; ".join(dict.fromkeys(s))))
              .reset_index())
    pub["_order"] = np.arange(len(pub))

    rep = _keyed(reproduced, "reproduced")
    value_col = next((c for c in ("reproduced", "value", "mean") if c in rep.columns), None)
    if value_col is None:
        raise ConfigError("reproduced table needs a 'value' (or 'reproduced' / 'mean') column")
    rep = rep.rename(columns={value_col: "reproduced"})
    for col, default in (("ci_low", np.nan), ("ci_high", np.nan), ("paper_value", np.nan),
                         ("ci_method", ""), ("ci_decisive", True), ("protocol", "")):
        if col not in rep.columns:
            rep[col] = default
    rep = rep.rename(columns={"paper_value": "paper_definition"})
    rep = rep[KEY + ["protocol", "reproduced", "paper_definition", "ci_low", "ci_high",
                     "ci_method", "ci_decisive"]]
    rep["_rorder"] = np.arange(len(rep))

    out = pub.merge(rep, on=KEY, how="outer", sort=False)
    out["protocol"] = out["protocol"].fillna("")
    for col in ("printed", "source", "ci_method"):
        out[col] = out[col].fillna("").astype(str)
    for col in ("published", "reproduced", "paper_definition", "ci_low", "ci_high"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    compared = out["paper_definition"].where(out["paper_definition"].notna(), out["reproduced"])
    out["difference"] = compared - out["published"]
    out["published_in_ci"] = _published_in_ci(out)
    why = inconsistent if isinstance(inconsistent, Mapping) else dict.fromkeys(inconsistent, INCONSISTENT)
    bad = {(str(d), normalise_subset(s), str(m)): text for (d, s, m), text in why.items()}
    out["paper_check"] = [bad.get((d, s, m), "") if pd.notna(p) else "" for d, s, m, p in
                          zip(out["dataset"], out["subset"], out["model"], out["published"])]
    # An outer merge sorts its keys: first restore published-then-reproduced order, then group.
    out["_order"] = out["_order"].fillna(len(out) + 1.0)
    out = out.sort_values(["_order", "_rorder"], kind="stable", na_position="first")
    ranks = {col: {v: i for i, v in enumerate(dict.fromkeys(out[col]))}
             for col in ("dataset", "model", "metric")}
    for col in ("dataset", "model", "metric"):
        out[f"_{col}"] = out[col].map(ranks[col])
    out["_subset"] = out["subset"].map(_subset_rank)
    out = out.sort_values(["_dataset", "_subset", "_model", "_metric"], kind="stable")
    return out[COMPARISON_COLUMNS].reset_index(drop=True)


def _published_in_ci(out: pd.DataFrame) -> pd.Series:
    """Published inside the interval, decided only by decisive intervals within the metric's range."""
    from breastcam.evaluate.statistics import metric_range

    decisive = out["ci_decisive"].map(lambda v: v is not False and v is not np.False_ and v != "False")
    low_ok = out["ci_low"] >= out["metric"].map(lambda m: metric_range(m)[0]) - 1e-9
    high_ok = out["ci_high"] <= out["metric"].map(lambda m: metric_range(m)[1]) + 1e-9
    has_ci = (out["ci_low"].notna() & out["ci_high"].notna() & out["published"].notna()
              & decisive & low_ok & high_ok)
    inside = (out["published"] >= out["ci_low"]) & (out["published"] <= out["ci_high"])
    result = pd.Series(pd.NA, index=out.index, dtype="boolean")
    result[has_ci] = inside[has_ci]
    return result


def _subset_rank(subset: str) -> tuple:
    # numeric subsets (magnifications) first in numeric order, then text, then "all"
    if subset == "all":
        return (2, 0.0, "")
    try:
        return (0, float(subset), "")
    except ValueError:
        return (1, 0.0, subset)


def format_cell(value: Any) -> str:
    """How a table cell is written: numbers to at most 4 decimals, missing values empty."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        text = f"{float(value):.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(value)


def to_markdown(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (no ``tabulate`` needed).

    Numbers are right-aligned, text left-aligned; ``|`` in cells is escaped and newlines become
    spaces. ``columns`` picks and orders the columns (default: all).
    """
    cols = list(columns) if columns is not None else [str(c) for c in df.columns]
    frame = df[cols] if columns is not None else df

    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    header = "| " + " | ".join(esc(str(c)) for c in cols) + " |"
    rule = "|" + "|".join("---:" if num else "---" for num in numeric) + "|"
    lines = [header, rule]
    for row in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(esc(format_cell(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"
