"""The BreakHis authors' folds as a split protocol, the leak table, and --patient-from."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from breastcam.cli import main
from breastcam.data import load_manifest, make_split, read_manifest, write_split
from breastcam.data.official import leak_markdown, leak_table, official_split
from breastcam.data.splits import patient_groups, split_info
from breastcam.errors import DataError

REPO = Path(__file__).resolve().parents[2]
# The shared data, where the fixtures of tests/conftest.py look (BREASTCAM_SHARED_DATA honoured):
SHARED = Path(os.environ.get("BREASTCAM_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLE = SHARED / "breakhis"
FOLDS = SHARED / "reference" / "breakhis"


@pytest.fixture(scope="module")
def reference():
    return read_manifest(REPO / "data_manifests" / "breakhis.csv")


def test_leak_table_and_its_doc(reference):
    table = leak_table(reference)
    assert table["test images"].tolist() == [2904, 2403, 2577, 2698, 3083]
    assert table["test images, slide folder in train"].tolist() == [0] * 5
    assert table["test images, slide in train"].tolist() == [123, 0, 123, 0, 123]
    assert table["test images, number in train"].tolist() == [1145, 674, 697, 836, 999]
    assert (REPO / "docs" / "BREAKHIS_FOLDS.md").read_text(encoding="utf-8") == \
        leak_markdown(reference), "docs/BREAKHIS_FOLDS.md is stale: run data_manifests/build.py"
    folders = reference.drop_duplicates("slide_folder")
    per_number = folders.groupby(patient_groups(folders, "numeric"))["slide"].agg(["size", "nunique"])
    # ten patient numbers span several slide folders: nine by several slide tokens (22549AB,
    # 22549CD, ...), and 13412 by one token filed under two tumour types
    assert (per_number["size"] > 1).sum() == 10 and (per_number["nunique"] > 1).sum() == 9


@pytest.mark.usefixtures("reference_root")
@pytest.mark.parametrize("fold", [2, 5])
def test_official_split_follows_the_fold_file(reference, fold, tmp_path):
    split = official_split(reference, fold, val_fraction=0.1, seed=3)
    names = split["path"].str.rsplit("/", n=1).str[-1]
    lines = (FOLDS / f"dsfold{fold}.txt").read_text().splitlines()
    test_names = {line.split("|")[0] for line in lines if line.endswith("|test")}
    assert set(names[split["split"] == "test"]) == test_names
    trainval = split[split["split"] != "test"]
    share = (trainval["split"] == "val").mean()
    assert 0.05 < share < 0.2  # whole patients: close to, not exactly, 10 %
    by_slide = trainval.groupby("slide")["split"].nunique()
    assert (by_slide == 1).all()  # validation patients (slide tokens) are not in train
    assert set(trainval.loc[trainval["split"] == "val", "label"]) == {"benign", "malignant"}
    write_split(split, tmp_path / "s.csv")
    back = read_manifest(tmp_path / "s.csv")
    assert split_info(back) == {"protocol": "breakhis-official", "group": "patient:slide",
                                "seed": 3, "fold": fold}
    assert back.columns[-1] == "split"


def test_cli_official_all_folds_on_the_sample(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    assert main(["manifest", "breakhis", str(SAMPLE), "--out", str(manifest)]) == 0
    out = tmp_path / "official" / "fold{fold}.csv"
    assert main(["split", str(manifest), "--protocol", "breakhis-official", "--fold", "all",
                 "--out", str(out), "--seed", "1"]) == 0
    for fold in range(1, 6):
        df = read_manifest(tmp_path / "official" / f"fold{fold}.csv")
        assert split_info(df)["fold"] == fold and len(df) == 20
    assert main(["split", str(manifest), "--protocol", "breakhis-official", "--fold", "all",
                 "--out", str(tmp_path / "one.csv")]) == 2  # a usage error
    assert "{fold}" in capsys.readouterr().err


def test_patient_from_on_grouped_splits(tmp_path):
    df = load_manifest("breakhis", SAMPLE)
    by_number = make_split(df, "dala", group="patient", seed=0, patient_from="numeric")
    numbers = patient_groups(by_number, "numeric")
    assert all(len(set(by_number["split"][numbers == n])) == 1 for n in set(numbers))
    by_slide = make_split(df, "ernet", group="patient", seed=0, patient_from="slide")
    slides = by_slide["slide"].to_numpy()
    assert all(len(set(by_slide["split"][slides == s])) == 1 for s in set(slides))
    write_split(by_slide, tmp_path / "s.csv")
    assert split_info(read_manifest(tmp_path / "s.csv")) == {
        "protocol": "ernet", "group": "patient:slide", "seed": 0}
    assert np.array_equal(patient_groups(df, "numeric"), df["patient_id"].to_numpy())
    mias = load_manifest("mias", SHARED / "mias")
    with pytest.raises(DataError, match="needs a 'slide' column"):
        make_split(mias, "modres", group="patient", patient_from="slide")
    with pytest.raises(DataError, match="group='patient'"):
        make_split(df, "dala", patient_from="slide")
