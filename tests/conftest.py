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
def reference_root() -> Path:
    """The full releases' own label / split / annotation files (no images)."""
    return _require(SHARED_DATA / "reference")


@pytest.fixture(scope="session")
def user_keras_file(tmp_path_factory) -> Path:
    """A user's own small Sequential CNN (64 px, 2 classes, no breastcam layer) saved with
    ``model.save``: what ``breastcam explain --model user.keras --preprocessing ...`` is given."""
    import keras

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                            keras.layers.MaxPooling2D(), keras.layers.Conv2D(8, 3, activation="relu"),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    path = tmp_path_factory.mktemp("user_model") / "user.keras"
    net.save(path)
    return path


@pytest.fixture(scope="session")
def quick_reports(tmp_path_factory) -> Path:
    """One reports folder per test session for the quick reproductions: the reproduce tests and
    the notebooks run the same experiments into it, so a finished run is reused, not retrained."""
    return tmp_path_factory.mktemp("quick_reports")


# Parallel runs (pytest-xdist, the README's `-n 2`). Each test file is one unit of work, so its
# module fixtures (the every-model fixture, trained runs) are built once; the files that share the
# session's quick reproductions form one unit, so those are trained once. The units known to take
# minutes go first, so that the workers finish together. (xdist's own `--dist loadgroup` cannot
# do this under pytest 9.2: it renames items through an attribute pytest no longer reads.)
_SHARE_QUICK_REPORTS = {"test_notebooks.py", "test_reproduce_quick.py", "test_table_scripts.py"}
_LONGEST_FIRST = ["tests/test_every_model.py", "quick_reports", "tests/test_packaging_wheel.py",
                  "tests/reproduce/test_reproduce_study_run.py", "tests/train/test_train_folds.py",
                  "tests/benchmarks/test_benchmark_gpu_tiny.py", "tests/test_demo.py",
                  "tests/test_cli_train_export_predict.py", "tests/train/test_train_distributed.py",
                  "tests/runs/test_runs_trained.py", "tests/runs/test_runs_macenko_parity.py",
                  # the developer loop's longest files
                  "tests/models/test_models_zoo.py", "tests/explain/test_explain_cli.py",
                  "tests/export/test_export_savedmodel.py", "tests/models/test_models_fidelity.py",
                  "tests/stain/test_stain_macenko.py", "tests/train/test_train_device_augment.py"]


def _work_unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return "quick_reports" if Path(path).name in _SHARE_QUICK_REPORTS else path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the collection it reports sets the order
        rank = {unit: i for i, unit in enumerate(_LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(_work_unit(item.nodeid), len(rank)))  # stable


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the longest-first order
    return ByWorkUnit(config, log)
