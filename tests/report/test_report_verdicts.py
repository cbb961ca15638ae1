"""The shipped verdicts of the metric solver: complete, equal to a fresh solve, and a miss solved."""

from __future__ import annotations

import pandas as pd
import pytest

from breastcam.report import metric_solver as ms
from breastcam.report import verdicts
from breastcam.report.published import load_published


@pytest.fixture(scope="module")
def rows():
    return verdicts.experiment_rows()


def test_every_published_row_of_every_experiment_has_a_shipped_verdict(rows):
    missing = sorted({f"{p} {r['dataset']} {r['subset']} {r['model']}" for p, r in rows
                      if verdicts.row_key(r, p) not in verdicts.shipped()})
    assert not missing, (f"{len(missing)} published rows have no verdict (first: {missing[:3]}); "
                         "run `python -m breastcam.report.verdicts` and commit the file")
    assert {r["method"] for r in verdicts.shipped().values()} <= {"integer", "rates"}


def _known(paper, row) -> dict:
    return verdicts.shipped()[verdicts.row_key(row, paper)]


def test_shipped_verdicts_agree_with_a_fresh_solve(rows):
    # The two-class rows with a printed test size are proofs (integer enumeration, fast): all of
    # them; and the multi-class row with fewest columns that some definition fits (rate search).
    integer = [(p, r) for p, r in rows if _known(p, r)["method"] == "integer"]
    assert len(integer) >= 40 and any(not _known(p, r)["fits"] for p, r in integer)
    for paper, row in integer:
        assert ms.row_fits(row, paper) == (_known(paper, row)["fits"], "integer"), row
    fitted = [(p, r) for p, r in rows if _known(p, r)["method"] == "rates" and _known(p, r)["fits"]]
    paper, row = min(fitted, key=lambda pr: len(pr[1]["bounds"]))
    assert ms.row_fits(row, paper) == (True, "rates")


def test_report_reads_the_shipped_verdicts_and_solves_a_row_missing_there(monkeypatch):
    both = pd.concat([load_published("000", 6), load_published("001", 11)], ignore_index=True)
    picked = both[(both["model"] == "dalaresnet50") & (both["subset"].astype(str) == "40")]
    expected = ms.inconsistent_keys(picked, "A")
    assert expected  # Tables 6 and XI together: no single matrix (test_report_metric_solver.py)

    def refuse(row, paper):
        raise AssertionError("solved although the verdict is shipped")

    monkeypatch.setattr(ms, "row_fits", refuse)
    assert verdicts.inconsistent_keys(picked, "A") == expected
    monkeypatch.undo()
    monkeypatch.setattr(verdicts, "shipped", lambda: {})  # an edited table: nothing shipped fits
    assert verdicts.inconsistent_keys(picked, "A") == expected


def test_the_key_changes_with_what_the_search_reads(monkeypatch):
    paper, row = verdicts.experiment_rows(["dala-breakhis"])[0]
    key = verdicts.row_key(row, paper)
    metric = next(iter(row["bounds"]))
    value, low, high = row["bounds"][metric]
    edited = {**row, "bounds": {**row["bounds"], metric: (value, low, high + 1e-3)}}
    assert verdicts.row_key(edited, paper) != key
    monkeypatch.setattr(ms, "RATE_STARTS", ms.RATE_STARTS + 1)
    assert verdicts.row_key(row, paper) != key
