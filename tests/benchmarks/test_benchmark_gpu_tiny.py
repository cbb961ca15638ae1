"""benchmarks/gpu.py in its tiny CPU mode, so the GPU readiness script cannot rot between GPU runs."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_benchmark_tiny_mode_writes_its_report(tmp_path):
    out = tmp_path / "gpu.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--tiny", "--work", str(tmp_path / "w"), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = out.read_text()
    assert "tiny (CPU smoke)" in report
    for row in ("steady epoch", "img/s", "projected 50 epochs", "2133 s", "<= 120 s", "DT Grad-CAM v2"):
        assert row in report, row
