"""Shared fixtures: the real sample images in ``../shared/data`` and small generated sets.

Tests that need the shared data skip when it is absent on a developer's machine, but FAIL when
the ``CI`` environment variable is set: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep test logs readable

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BREASTCAM_SHARED_DATA", REPO.parent / "shared" / "data"))


def _require(path: Path) -> Path:
    if path.exists():
        return path
    msg = (
        f"shared test data not found at {path}; put the shared data beside the repository "
        "(../shared/data) or set BREASTCAM_SHARED_DATA"
    )
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def breakhis_root() -> Path:
    """Root of the real BreakHis sample (the folder holding ``BreaKHis_v1``)."""
    return _require(SHARED_DATA / "breakhis")


@pytest.fixture(scope="session")
def mias_root() -> Path:
    """Folder of the real mini-MIAS sample (``all-mias``: PGMs and Info.txt)."""
    return _require(SHARED_DATA / "mias" / "all-mias")


@pytest.fixture(scope="session")
def quick_reports(tmp_path_factory) -> Path:
    """One reports folder per test session for the quick reproductions: the reproduce tests and
    the notebooks run the same experiments into it, so a finished run is reused, not retrained."""
    return tmp_path_factory.mktemp("quick_reports")
