"""How breastcam finds ``experiments/``: override, installed package data, source checkout.

The wheel itself is built and installed in ``test_packaging_wheel.py`` (slow); here the installed
layout is imitated (the package copied to a folder with ``experiments/`` inside it), which only
costs an interpreter start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from breastcam.errors import ConfigError
from breastcam.resources import checkout_root, data_folder, experiments_dir

REPO = Path(__file__).resolve().parents[1]


def test_a_checkout_reads_its_own_experiments_folder(monkeypatch):
    monkeypatch.delenv("BREASTCAM_EXPERIMENTS", raising=False)
    import breastcam

    root = Path(breastcam.__file__).resolve().parents[1]
    assert checkout_root() == root
    assert experiments_dir() == root / "experiments"
    assert (experiments_dir() / "modres" / "mias.yaml").is_file()


def test_overrides_and_unknown_folders_are_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("BREASTCAM_EXPERIMENTS", str(tmp_path))
    assert experiments_dir() == tmp_path
    monkeypatch.setenv("BREASTCAM_DATA_MANIFESTS", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="BREASTCAM_DATA_MANIFESTS"):
        data_folder("data_manifests")
    with pytest.raises(ValueError, match="experiments"):
        data_folder("templates")


def _probe(site: Path, cwd: Path) -> dict:
    code = ("import json, breastcam, breastcam.resources as r; print(json.dumps({'file': breastcam.__file__, "
            "'experiments': str(r.experiments_dir()), 'checkout': str(r.checkout_root())}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREASTCAM_")}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_installed_layout_reads_the_packaged_copy(tmp_path):
    """As a wheel installs it: ``site/breastcam/experiments``, no checkout around it."""
    import breastcam

    site = tmp_path / "site"
    shutil.copytree(Path(breastcam.__file__).parent, site / "breastcam",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "experiments", site / "breastcam" / "experiments")
    info = _probe(site, tmp_path)
    assert Path(info["file"]).parent == site / "breastcam"  # the copy, not the checkout
    assert Path(info["experiments"]) == site / "breastcam" / "experiments"
    assert info["checkout"] == "None"

    shutil.rmtree(site / "breastcam" / "experiments")  # a broken install says what to do
    code = "import breastcam.resources as r; r.experiments_dir()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREASTCAM_")}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "BREASTCAM_EXPERIMENTS" in done.stderr and "pip install" in done.stderr
