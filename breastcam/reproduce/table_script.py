"""The command line shared by the per-table scripts ``experiments/<paper>/table*.py``.

Each script names one published table and the experiment that reproduces it; ``run_table``
parses ``--data-dir DIR [--quick] [--out DIR] [--allow-partial]``, runs
:func:`breastcam.reproduce.reproduce` (manifest, committed or fresh splits, training,
evaluation, report) and prints that table's rows: published beside reproduced.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import pandas as pd


def table_rows(comparison: pd.DataFrame, source: str) -> pd.DataFrame:
    """The rows of ``comparison.csv`` printed by ``source`` (e.g. ``"paper 000 Table 6"``)."""
    mine = comparison["source"].fillna("").str.split("; ").map(lambda s: source in s)
    columns = [c for c in ("subset", "model", "metric", "protocol", "published", "reproduced",
                           "ci_low", "ci_high") if c in comparison.columns]
    return comparison.loc[mine, columns].reset_index(drop=True)


def run_table(experiment: str, source: str, description: str,
              argv: Sequence[str] | None = None) -> int:
    """Reproduce ``experiment`` and print the rows of published table ``source``."""
    from breastcam.reproduce import reproduce

    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the dataset's root folder")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: few images, small inputs, 1 epoch (implies --allow-partial)")
    parser.add_argument("--out", default="reports", help="report folder (default: reports)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="run on a folder that is not the complete release")
    args = parser.parse_args(argv)
    html = reproduce(experiment, args.data_dir, quick=args.quick, out_dir=args.out,
                     allow_partial=args.allow_partial)
    out = Path(html).parent
    comparison = out / "comparison.csv"
    if comparison.is_file():
        rows = table_rows(pd.read_csv(comparison), source)
        print(f"{source} ({experiment}):")
        print(rows.to_string(index=False) if len(rows) else "  (no row of this table was produced)")
    print(f"report: {html}")
    status = out / "status.json"
    failed = json.loads(status.read_text()).get("failed", 0) if status.is_file() else 0
    return 1 if failed else 0
