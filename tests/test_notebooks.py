"""The three paper notebooks run top to bottom (nbclient, kernel ``python3``) on the shared samples.

They need ``../shared/data``: the ``shared_data`` fixture skips without it on a developer's
machine and FAILS when ``CI`` is set.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["paper_a_dala", "paper_b_ernet", "paper_c_modres"])
def test_notebook_runs(name, shared_data, quick_reports, monkeypatch):
    # The quick reproductions' folder of this session: runs that tests/reproduce already
    # finished (same experiment, data and options) are reused, not trained again.
    monkeypatch.setenv("BREASTCAM_SHARED_DATA", str(shared_data))
    monkeypatch.setenv("BREASTCAM_REPORTS", str(quick_reports))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.time()
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert html, "the comparison table (a pandas DataFrame) is shown"
    assert any("image/png" in o.get("data", {}) for o in outputs), "figures are shown"
    written = [p for p in quick_reports.glob("*/index.html") if p.stat().st_mtime >= started]
    assert written, "the notebook wrote its report"
