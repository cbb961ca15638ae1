"""breastcam as a user installs it: a built wheel in a fresh venv, run from outside the checkout.

Guards the package data (``experiments/`` ships inside the wheel, see ``setup.py`` and
``breastcam/resources.py``): ``breastcam reproduce --list`` and a quick reproduction must work
with no source checkout in sight. The venv reuses this environment's installed dependencies
through a ``.pth`` line (TensorFlow is not installed twice); the checkout is never on its path,
and the test checks that the installed copy is the one imported.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pytest

from breastcam.report import list_experiments, load_published
from breastcam.report.tables import format_cell
from breastcam.resources import experiments_dir

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _copy_source(dest: Path) -> None:
    """The files a clean clone has (tracked + new, not ignored), so that building the wheel writes
    nothing (build/, *.egg-info) into the checkout."""
    listed = None
    if shutil.which("git") and (REPO / ".git").exists():
        result = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                                capture_output=True, check=False)
        if result.returncode == 0:
            listed = [p for p in result.stdout.decode().split("\0") if p]
    if listed is None:  # no git (an unpacked archive): everything but caches and outputs
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", "runs", "reports"))
        return
    for rel in listed:
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _build_wheel(src: Path, dist: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)]
    if find_spec("setuptools") and find_spec("wheel"):
        cmd.insert(4, "--no-build-isolation")  # offline: build with this environment's setuptools
    subprocess.run(cmd, check=True, cwd=src)
    (wheel,) = dist.glob("breastcam-*.whl")
    return wheel


def _make_venv(venv: Path, wheel: Path) -> Path:
    """A fresh venv holding only the wheel; this environment's site-packages are appended to its
    path by a plain .pth line (their own .pth files, e.g. an editable breastcam, are not run)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    here = dict.fromkeys(site.getsitepackages() + [sysconfig.get_paths()["purelib"],
                                                   sysconfig.get_paths()["platlib"]])
    Path(purelib, "_breastcam_test_parent_env.pth").write_text("\n".join(here) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True)
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(python, breastcam script, env, workdir)`` of a venv with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist = tmp / "src", tmp / "dist"
    src.mkdir()
    _copy_source(src)
    wheel = _build_wheel(src, dist)
    python = _make_venv(tmp / "venv", wheel)
    script = python.parent / ("breastcam.exe" if os.name == "nt" else "breastcam")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "BREASTCAM_EXPERIMENTS", "BREASTCAM_DATA_MANIFESTS")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    work = tmp / "elsewhere"  # a working directory outside the checkout
    work.mkdir()
    return python, script, env, work


def test_the_installed_wheel_is_imported_and_ships_experiments(installed):
    python, _, env, work = installed
    probe = ("import json, breastcam, breastcam.resources as r; print(json.dumps("
             "{'file': breastcam.__file__, 'experiments': str(r.experiments_dir()), "
             "'checkout': r.checkout_root() is not None}))")
    out = subprocess.run([str(python), "-c", probe], cwd=work, env=env, capture_output=True, text=True,
                         check=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    venv = python.parents[1].resolve()
    assert Path(info["file"]).resolve().is_relative_to(venv), info  # not the checkout's copy
    assert not Path(info["file"]).resolve().is_relative_to(REPO)
    assert not info["checkout"]
    shipped = Path(info["experiments"])
    assert shipped.resolve().is_relative_to(venv) and shipped.parent.name == "breastcam"
    # every experiment file of the checkout is in the wheel (a new kind of file needs a pattern
    # in setup.py's DATA_PATTERNS)
    ours = {p.relative_to(experiments_dir()) for p in experiments_dir().rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
    theirs = {p.relative_to(shipped) for p in shipped.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert ours <= theirs, sorted(map(str, ours - theirs))


def _check_report(html: Path) -> None:
    """The report compares runs with paper 004 Table 3, read from the wheel's published CSV."""
    table3 = load_published("004", 3)
    comparison = pd.read_csv(html.parent / "comparison.csv")
    rows = comparison[comparison["published"].notna() & comparison["reproduced"].notna()]
    assert len(rows) and rows["source"].eq("paper 004 Table 3").all(), comparison.head()
    assert rows["published"].isin(table3["value"]).all()
    assert rows["reproduced"].between(0, 1).all()
    assert format_cell(rows["published"].iloc[0]) in html.read_text()


def test_installed_breastcam_lists_and_reproduces_from_elsewhere(installed, mias_root):
    _, script, env, work = installed
    listed = subprocess.run([str(script), "reproduce", "--list"], cwd=work, env=env,
                            capture_output=True, text=True, check=True).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    assert set(names) >= {name for name, _, _ in list_experiments()}, listed

    run = subprocess.run([str(script), "reproduce", "modres-mias", "--quick", "--data-dir",
                          str(Path(mias_root).resolve())], cwd=work, env=env, capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = work / "reports" / "modres-mias" / "index.html"
    assert html.is_file()
    status = json.loads((html.parent / "status.json").read_text())
    assert status["failed"] == 0 and status["runs"] >= 1, status
    _check_report(html)
    assert not (work / "data_manifests").exists()  # quick runs keep their splits under the report
