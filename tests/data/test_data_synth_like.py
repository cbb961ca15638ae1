"""`breastcam synth --like`: a synthetic tree with the reference manifest's names, sizes and formats."""

from __future__ import annotations

import warnings

import cv2
import pandas as pd
import pytest

from breastcam.cli import main
from breastcam.data.synth_like import FORMATS, synth_like
from breastcam.data.loaders import load_manifest
from breastcam.data.manifest import read_manifest
from breastcam.errors import DataError
from breastcam.resources import data_manifests_dir


@pytest.mark.parametrize("dataset", sorted(FORMATS))
def test_fraction_of_every_class_written_at_real_size_and_format(dataset, tmp_path):
    reference = pd.read_csv(data_manifests_dir() / f"{dataset}.csv", dtype={"patient_id": str})
    size = (96, 128)  # small for the test; the real size is the default
    rows = synth_like(reference, tmp_path, dataset, fraction=0.002, size=size, seed=0)
    assert set(rows["label_index"]) == set(reference["label_index"])  # every class kept
    for rel in rows["path"]:
        image = cv2.imread(str(tmp_path / rel), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.shape[:2] == size, rel
        assert image.ndim == (3 if FORMATS[dataset][1] == 3 else 2), rel


def test_default_size_is_the_datasets_and_same_seed_same_bytes(tmp_path):
    reference = pd.read_csv(data_manifests_dir() / "mias.csv").head(2)
    synth_like(reference, tmp_path / "a", "mias", seed=3)
    synth_like(reference, tmp_path / "b", "mias", seed=3)
    first = reference["path"].iloc[0]
    assert cv2.imread(str(tmp_path / "a" / first), cv2.IMREAD_UNCHANGED).shape == (1024, 1024)
    assert (tmp_path / "a" / first).read_bytes() == (tmp_path / "b" / first).read_bytes()


def test_cli_writes_a_tree_the_reference_check_accepts(tmp_path, capsys):
    assert main(["synth", "--like", "mias", "--out", str(tmp_path), "--fraction", "0.02", "--size", "64x64"]) == 0
    assert "synthetic mias images" in capsys.readouterr().out
    assert len(list((tmp_path / "all-mias").glob("*.pgm"))) >= 3


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(DataError, match="fraction"):
        synth_like(pd.DataFrame({"path": ["a.png"], "label_index": [0]}), tmp_path, "breakhis", fraction=0)
    assert main(["synth", "--like", "mias", "--out", str(tmp_path), "--size", "big"]) != 0


@pytest.mark.parametrize("dataset", ["mias", "cddcesm"])
def test_loader_reads_the_label_file_synth_wrote(dataset, tmp_path):
    """mini-MIAS Info.txt and the CDD-CESM sheet are written: the loader labels the tree as the
    reference manifest does (a fraction: only the rows written, no absent-image warnings)."""
    reference = read_manifest(data_manifests_dir() / f"{dataset}.csv")
    if dataset == "cddcesm":  # low energy images: the loader's default modality
        reference = reference[reference["type"] == "DM"]
    rows = synth_like(reference, tmp_path, dataset, fraction=0.02, size=(32, 32), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_manifest(dataset, tmp_path, classes="three")
    got = loaded.set_index("path")
    want = rows.set_index("path")
    assert sorted(got.index) == sorted(want.index)
    assert (got["label"] == want.loc[got.index, "label"]).all()
    assert (got["patient_id"].astype(str) == want.loc[got.index, "patient_id"].astype(str)).all()
    if dataset == "mias":  # lesion circles and unlocated calcifications survive the round trip
        assert (got["lesions"] == want.loc[got.index, "lesions"]).all()
