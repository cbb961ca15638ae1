"""Reference manifests (data_manifests/*.csv) against the datasets' own label files and the papers.

The label files are the real ones in ../shared/data/reference (no images); the loaders are run on
trees of empty files laid out like the releases (a loader reads no pixel), so they are tested on
the real annotation formats.
"""

from __future__ import annotations

import shutil
import warnings
import os
from pathlib import Path

import pandas as pd
import pytest

from breastcam.data import load_manifest, make_split, read_manifest, write_manifest
from breastcam.data.reference import build_reference, reference_view
from breastcam.report import load_published

REPO = Path(__file__).resolve().parents[2]
# The shared data, where the fixtures of tests/conftest.py look (BREASTCAM_SHARED_DATA honoured):
SHARED = Path(os.environ.get("BREASTCAM_SHARED_DATA", REPO.parent / "shared" / "data"))
REFERENCE = SHARED / "reference"
MIAS = SHARED / "mias" / "all-mias"
SOURCES = {"breakhis": REFERENCE / "breakhis", "bach": REFERENCE / "bach",
           "miniddsm": REFERENCE / "mini-ddsm", "cddcesm": REFERENCE / "cdd-cesm", "mias": MIAS}

pytestmark = pytest.mark.usefixtures("reference_root", "breakhis_root", "mias_root")


def committed(dataset: str) -> pd.DataFrame:
    return read_manifest(REPO / "data_manifests" / f"{dataset}.csv")


@pytest.mark.parametrize("dataset", sorted(SOURCES))
def test_committed_manifest_is_what_the_builder_makes(dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CDD-CESM's sheet notes: tested below
        built = build_reference(dataset, SOURCES[dataset])
    from breastcam.data.manifest import manifest_csv_bytes

    assert manifest_csv_bytes(built) == (REPO / "data_manifests" / f"{dataset}.csv").read_bytes(), \
        "data_manifests/ is stale: run python data_manifests/build.py"


def test_breakhis_counts_equal_paper_000_table3():
    df = committed("breakhis")
    table = load_published("000", 3)
    counts = pd.crosstab(df["label"], df["magnification"])
    for row in table.itertuples():
        mag = int(row.subset)
        expected = int(row.value)
        got = {"n_benign": counts.loc["benign", mag], "n_malignant": counts.loc["malignant", mag],
               "n_total": counts[mag].sum()}[row.metric]
        assert got == expected, (row.metric, mag)
    assert len(df) == 7909
    # the authors' 82 patients are the slide folders: 24 benign, 58 malignant
    assert df.groupby("label")["slide_folder"].nunique().to_dict() == {"benign": 24, "malignant": 58}
    assert df["slide_folder"].nunique() == 82


def test_breakhis_sample_tree_rows_are_reference_rows():
    sample = load_manifest("breakhis", SHARED / "breakhis")
    ref = committed("breakhis").set_index("path")
    assert set(sample["path"]) <= set(ref.index)
    for column in ("label", "patient_id", "magnification", "subtype", "slide", "seq"):
        assert (ref.loc[sample["path"], column].astype(str).to_numpy()
                == sample[column].astype(str).to_numpy()).all(), column


def test_paper_001_table_vi_sizes_from_the_reference_manifests():
    table = load_published("001", "VI")
    views = {("breakhis", str(m)): reference_view(committed("breakhis"), "breakhis", magnification=m)
             for m in (40, 100, 200, 400)}
    views[("bach", "all")] = reference_view(committed("bach"), "bach")
    for (dataset, subset), df in views.items():
        split = make_split(df, "dala", seed=0)
        rows = table[(table["dataset"] == dataset) & (table["subset"].astype(str) == subset)]
        got = {"n_total": len(df), **{f"n_{s}": int((split["split"] == s).sum())
                                      for s in ("train", "val", "test")}}
        assert {r.metric: int(r.value) for r in rows.itertuples()} == got, (dataset, subset)
    # paper 001 Table IV: 100 BACH images per class
    assert committed("bach")["label"].value_counts().to_dict() == {
        "Normal": 100, "Benign": 100, "InSitu": 100, "Invasive": 100}


def test_miniddsm_counts():
    df = committed("miniddsm")
    # The full release; paper 001 (Table V / VI) used a 2,000-image subset it does not list.
    assert df["label"].value_counts().to_dict() == {"Cancer": 2716, "Benign": 2684, "Normal": 2408}
    assert df["patient_id"].nunique() == 1952
    assert (df.groupby("patient_id").size() == 4).all()  # 4 views per case
    assert set(df["view"]) == {"CC", "MLO"} and set(df["laterality"]) == {"LEFT", "RIGHT"}


def test_cddcesm_counts_equal_paper_004():
    df = committed("cddcesm")
    # paper 004: 326 patients, 2,006 images = 1,003 low-energy + 1,003 subtracted (sheet rows);
    # 4 of those rows are exact duplicates, so 2,002 distinct images (1,001 + 1,001).
    assert df["patient_id"].nunique() == 326
    assert len(df) == 2002 and df["type"].value_counts().to_dict() == {"DM": 1001, "CESM": 1001}
    sheet = pd.read_excel(SOURCES["cddcesm"] / "Radiology-manual-annotations.xlsx", sheet_name="all")
    assert len(sheet) == 2006 and sheet["Type"].value_counts().to_dict() == {"DM": 1003, "CESM": 1003}
    assert df["label"].value_counts().to_dict() == {"normal": 753, "malignant": 662, "benign": 587}
    low = reference_view(df, "cddcesm")  # the modres study: low energy, normal vs abnormal
    assert len(low) == 1001 and low.attrs["classes"] == ["normal", "abnormal"]


def test_mias_counts():
    df = committed("mias")
    assert len(df) == 322 and df["patient_id"].nunique() == 161
    assert df["label"].value_counts().to_dict() == {"normal": 207, "benign": 63, "malignant": 52}


# --- the loaders on the real annotation files ---------------------------------------------------


def _touch_tree(root: Path, paths) -> None:
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def _same_rows(loaded: pd.DataFrame, ref: pd.DataFrame, tmp_path: Path) -> None:
    """Same rows and values, compared after the CSV round trip both go through."""
    write_manifest(loaded, tmp_path / "loaded.csv")
    left = read_manifest(tmp_path / "loaded.csv")
    right = ref[list(left.columns)].sort_values("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


def test_bach_loader_reads_the_crlf_ground_truth(tmp_path):
    assert b"\r\n" in (SOURCES["bach"] / "microscopy_ground_truth.csv").read_bytes()
    ref = committed("bach")
    _touch_tree(tmp_path, ref["path"])
    photos = tmp_path / "ICIAR2018_BACH_Challenge" / "Photos"
    shutil.copy(SOURCES["bach"] / "microscopy_ground_truth.csv", photos)
    _same_rows(load_manifest("bach", tmp_path), ref, tmp_path)


@pytest.mark.slow  # ~10,000 files to create: about 40 s on a loaded CI machine
def test_miniddsm_loader_reads_datawmask(tmp_path):
    ref = committed("miniddsm")
    _touch_tree(tmp_path, list(ref["path"]) + [m for m in ref["mask"] if m])
    shutil.copy(SOURCES["miniddsm"] / "DataWMask.xlsx", tmp_path / "MINI-DDSM-Complete-JPEG-8")
    _same_rows(load_manifest("miniddsm", tmp_path), ref, tmp_path)


def test_miniddsm_loader_checks_a_partial_copy_against_datawmask(tmp_path):
    ref = committed("miniddsm")
    part = ref[ref["patient_id"].isin(["Benign/0029", "Normal/0029", "Cancer/0001"])]
    assert len(part) == 8  # Normal/0029 is not a case: a case number is per volume
    _touch_tree(tmp_path, part["path"])
    data = tmp_path / "MINI-DDSM-Complete-JPEG-8"
    shutil.copy(SOURCES["miniddsm"] / "DataWMask.xlsx", data)
    with pytest.warns(UserWarning, match="7800 image\\(s\\) listed in DataWMask.xlsx are not on disk"):
        loaded = load_manifest("miniddsm", tmp_path)
    _same_rows(loaded, part, tmp_path)
    # an image filed under another class than its row says is an error naming it
    moved = data / "Normal" / "0029"
    moved.mkdir(parents=True)
    (data / "Benign" / "0029" / "C_0029_1.LEFT_CC.jpg").rename(moved / "C_0029_1.LEFT_CC.jpg")
    with pytest.raises(ValueError, match="Normal/0029/C_0029_1.LEFT_CC.jpg"):
        load_manifest("miniddsm", tmp_path)


def test_cddcesm_loader_reads_the_real_sheet_and_reports_its_quirks(tmp_path):
    ref = committed("cddcesm")
    _touch_tree(tmp_path, ref["path"])
    shutil.copy(SOURCES["cddcesm"] / "Radiology-manual-annotations.xlsx", tmp_path)
    with pytest.warns(UserWarning) as caught:
        loaded = load_manifest("cddcesm", tmp_path, classes="three", modality="both")
    text = " ".join(str(w.message) for w in caught)
    assert "5 image name(s) with surrounding spaces" in text and "'P4_L_DM_MLO '" in text
    assert "4 exact duplicate row(s)" in text and "P281_L_CM_MLO" in text
    _same_rows(loaded, ref, tmp_path)
    with pytest.warns(UserWarning):
        binary = load_manifest("cddcesm", tmp_path)
    _same_rows(binary, reference_view(ref, "cddcesm"), tmp_path)
    with pytest.warns(UserWarning):  # paper C's task: benign images left out, not reported missing
        malignant = load_manifest("cddcesm", tmp_path, classes="malignant")
    _same_rows(malignant, reference_view(ref, "cddcesm", classes="malignant"), tmp_path)
    assert set(malignant["label"]) == {"normal", "malignant"}


def test_mias_loader_rows_are_reference_rows(tmp_path):
    loaded = load_manifest("mias", MIAS.parent)
    ref = committed("mias")
    # Every film of the sample is loaded (an empty load must not pass by comparing nothing).
    assert len(loaded) == len(list(MIAS.glob("*.pgm"))) > 0
    _same_rows(loaded, ref[ref["path"].isin(loaded["path"])], tmp_path)
