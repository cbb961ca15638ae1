"""`breastcam validate --against`: a download compared with its reference manifest."""

from __future__ import annotations

import shutil
import os
from pathlib import Path

import pytest

from breastcam.cli import main
from breastcam.data import read_manifest
from breastcam.data.against import failed, locate_root, validate_against

REPO = Path(__file__).resolve().parents[2]
# The shared data, where the fixtures of tests/conftest.py look (BREASTCAM_SHARED_DATA honoured):
SHARED = Path(os.environ.get("BREASTCAM_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLE = SHARED / "breakhis"
REFERENCE = REPO / "data_manifests" / "breakhis.csv"
SOB = "BreaKHis_v1/histology_slides/breast"

pytestmark = pytest.mark.usefixtures("breakhis_root")


@pytest.fixture(scope="module")
def reference():
    return read_manifest(REFERENCE)


def test_sample_tree_reports_the_absent_images_as_missing(reference, capsys):
    problems, root, present = validate_against(reference, SAMPLE / "BreaKHis_v1", decode=False)
    assert root == SAMPLE and present == 20
    assert {p.kind for p in problems} == {"missing"} and len(problems) == 7889
    assert failed(problems, allow_partial=True) is False and failed(problems, allow_partial=False)
    args = ["validate", "--against", str(REFERENCE), "--root", str(SAMPLE), "--max-listed", "2"]
    assert main(args + ["--allow-partial"]) == 0
    out = capsys.readouterr().out
    assert "20 of 7909 reference image(s) present; 7889 missing" in out
    assert "... and 7887 more missing" in out


def test_added_renamed_and_moved_files_are_all_reported(reference, tmp_path):
    shutil.copytree(SAMPLE / "BreaKHis_v1", tmp_path / "BreaKHis_v1")
    adenosis = tmp_path / SOB / "benign/SOB/adenosis/SOB_B_A_14-22549AB/40X"
    source = adenosis / "SOB_B_A-14-22549AB-40-001.png"
    # added: a copy under a new name; renamed: another file, in place
    shutil.copy(source, adenosis / "SOB_B_A-14-22549AB-40-999.png")
    folder_200 = tmp_path / SOB / "benign/SOB/adenosis/SOB_B_A_14-29960CD/200X"
    renamed = next(folder_200.glob("*.png"))
    renamed.rename(folder_200 / "renamed.png")
    # mislabelled: a benign image moved into a malignant slide folder
    ductal = tmp_path / SOB / "malignant/SOB/ductal_carcinoma/SOB_M_DC_14-2523/40X"
    benign = next((tmp_path / SOB / "benign/SOB/fibroadenoma").rglob("*.png"))
    shutil.move(benign, ductal / benign.name)
    # unreadable: a truncated file at a reference path
    broken = next(ductal.parent.glob("400X/*.png"))
    broken.write_bytes(broken.read_bytes()[:500])

    problems, root, present = validate_against(reference, tmp_path)
    assert root == tmp_path and present == 18
    by_kind = {}
    for p in problems:
        by_kind.setdefault(p.kind, []).append(p)
    rel = lambda path: path.relative_to(tmp_path).as_posix()  # noqa: E731
    assert [p.path for p in by_kind["extra"]] == sorted(
        [rel(adenosis / "SOB_B_A-14-22549AB-40-999.png"), rel(folder_200 / "renamed.png")])
    assert [p.path for p in by_kind["mislabelled"]] == [rel(ductal / benign.name)]
    assert "a benign image" in by_kind["mislabelled"][0].detail
    missing = {p.path for p in by_kind["missing"]}
    assert rel(renamed) in missing and rel(benign) in missing and len(missing) == 7889 + 2
    assert [p.path for p in by_kind["truncated"]] == [rel(broken)]
    assert failed(problems, allow_partial=True)


def test_locate_root_accepts_the_top_folder_or_its_parent(tmp_path):
    paths = ["BreaKHis_v1/a/b.png"]
    (tmp_path / "BreaKHis_v1" / "a").mkdir(parents=True)
    assert locate_root(paths, tmp_path) == tmp_path
    assert locate_root(paths, tmp_path / "BreaKHis_v1") == tmp_path
    assert locate_root(paths, tmp_path / "BreaKHis_v1" / "a") == tmp_path
