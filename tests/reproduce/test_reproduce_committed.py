"""Committed splits (data_manifests/splits/): current, used on a complete download, and a
partial download refused unless allowed."""

from __future__ import annotations

import gzip
import shutil
import os
from pathlib import Path

import pandas as pd
import pytest

from breastcam.data import load_manifest, make_split, read_manifest
from breastcam.errors import DataError
from breastcam.report import load_experiment
from breastcam.reproduce.committed import (splits_dir, build_splits, check_download, committed_split,
                                           read_splits)
from breastcam.reproduce.plan import make_plan

REPO = Path(__file__).resolve().parents[2]
# The shared data, where the fixtures of tests/conftest.py look (BREASTCAM_SHARED_DATA honoured):
SHARED = Path(os.environ.get("BREASTCAM_SHARED_DATA", REPO.parent / "shared" / "data"))
GROUND_TRUTH = SHARED / "reference" / "bach" / "microscopy_ground_truth.csv"


@pytest.mark.parametrize("dataset", ["bach", "cddcesm", "mias", "miniddsm", "breakhis"])
def test_committed_splits_are_current(dataset):
    built = build_splits(dataset)
    text = gzip.decompress((splits_dir() / f"{dataset}.csv.gz").read_bytes()).decode("utf-8")
    assert built.to_csv(index=False, lineterminator="\n") == text, \
        "data_manifests/splits/ is stale: run python data_manifests/build.py"


def test_committed_breakhis_splits_match_paper_001_table_vi():
    table = read_splits("breakhis")
    for mag, sizes in {40: (1197, 199, 599), 400: (1092, 182, 546)}.items():
        column = f"label=binary,patient_from=numeric|{mag}|dala|label"
        counts = table[column].value_counts()
        assert (counts["train"], counts["val"], counts["test"]) == sizes
        grouped = table[f"label=binary,patient_from=numeric|{mag}|dala-patient|label"]
        patients = read_manifest(REPO / "data_manifests" / "breakhis.csv")["patient_id"]
        per_patient = pd.DataFrame({"p": patients, "s": grouped})[grouped != ""]
        assert (per_patient.groupby("p")["s"].nunique() == 1).all()


@pytest.fixture()
def bach_tree(tmp_path):
    ref = read_manifest(REPO / "data_manifests" / "bach.csv")
    for rel in ref["path"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).touch()
    shutil.copy(GROUND_TRUTH, tmp_path / "ICIAR2018_BACH_Challenge" / "Photos")
    return tmp_path


@pytest.mark.usefixtures("reference_root")
@pytest.mark.parametrize("below", ["", "ICIAR2018_BACH_Challenge/Photos"])
def test_complete_download_uses_the_committed_split(bach_tree, below, tmp_path):
    exp = load_experiment("dala-bach")
    data_dir = bach_tree / below
    manifest = load_manifest("bach", data_dir)
    assert check_download(exp, manifest, data_dir) is None
    plan = make_plan(exp, data_dir, out_dir=tmp_path / "out", quick=False, manifest=manifest)
    (job,) = plan.splits
    split = committed_split(exp, job, data_dir)
    assert split is not None and split["split"].value_counts().to_dict() == {
        "train": 240, "test": 120, "val": 40}
    fresh = make_split(job.rows, job.base, group=job.group, seed=0, stratify=job.stratify)
    assert split["path"].tolist() == fresh["path"].tolist()
    assert split.attrs["split"]["protocol"] == "dala"
    # one image fewer: the committed split no longer applies, and a full run is refused
    job.rows = job.rows.iloc[1:]
    assert committed_split(exp, job, data_dir) is None
    with pytest.raises(DataError, match=r"1 of the release's 400 images are missing.*--allow-partial"):
        check_download(exp, manifest.iloc[1:], data_dir)
    assert "split afresh" in check_download(exp, manifest.iloc[1:], data_dir, allow_partial=True)


def test_sample_is_partial_and_quick_mode_allows_it():
    exp = load_experiment("dala-breakhis")
    data_dir = SHARED / "breakhis"
    manifest = load_manifest("breakhis", data_dir, **exp["filters"])
    with pytest.raises(DataError, match="7889 of the release's 7909 images are missing"):
        check_download(exp, manifest, data_dir)
    assert "7889" in check_download(exp, manifest, data_dir, allow_partial=True)


def test_full_reproduce_refuses_the_sample_before_any_work(tmp_path, capsys):
    from breastcam.cli import main

    data_dir = SHARED / "mias" / "all-mias"
    code = main(["reproduce", "modres-mias", "--data-dir", str(data_dir), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "260 of the release's 322 images are missing" in err
    assert "--allow-partial" in err and "validate --against data_manifests/mias.csv" in err
    assert not (tmp_path / "modres-mias").exists()
