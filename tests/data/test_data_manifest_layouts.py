"""BACH, Mini-DDSM and CDD-CESM loaders on generated trees laid out like the public downloads."""

from __future__ import annotations

import pytest
from fixtures_layouts import CDDCESM_ROWS, make_bach, make_cddcesm, make_miniddsm, write_image

from breastcam.data import load_manifest

# --- BACH -------------------------------------------------------------------------------------


@pytest.mark.parametrize("below, prefix", [
    ("", "ICIAR2018_BACH_Challenge/Photos/"),
    ("ICIAR2018_BACH_Challenge", "Photos/"),
    ("ICIAR2018_BACH_Challenge/Photos", ""),
])
def test_bach_labels_from_folders(tmp_path, below, prefix):
    make_bach(tmp_path, per_class=2)
    df = load_manifest("bach", tmp_path / below)
    assert df.attrs["classes"] == ["Normal", "Benign", "InSitu", "Invasive"]
    assert len(df) == 8 and (df["patient_id"] == "").all()
    row = df.set_index("path").loc[prefix + "InSitu/is002.tif"]
    assert (row["label"], row["label_index"]) == ("InSitu", 2)
    assert df.groupby("label").size().to_dict() == {c: 2 for c in df.attrs["classes"]}


def test_bach_ground_truth_csv_takes_precedence(tmp_path):
    names = {f"{p}{k:03d}.tif": c for p, c in [("n", "Normal"), ("b", "Benign"),
                                                ("is", "InSitu"), ("iv", "Invasive")] for k in (1, 2)}
    names["b002.tif"] = "Invasive"  # the CSV wins over the folder
    make_bach(tmp_path, ground_truth=names)
    df = load_manifest("bach", tmp_path).set_index("path")
    assert df.loc["ICIAR2018_BACH_Challenge/Photos/Benign/b002.tif", "label"] == "Invasive"
    assert df.loc["ICIAR2018_BACH_Challenge/Photos/Benign/b001.tif", "label"] == "Benign"


def test_bach_ground_truth_must_cover_every_image(tmp_path):
    make_bach(tmp_path, ground_truth={"n001.tif": "Normal", "x999.tif": "Benign"})
    with pytest.raises(ValueError) as err:
        load_manifest("bach", tmp_path)
    assert "b001.tif" in str(err.value) and "x999.tif" in str(err.value)


def test_bach_wrong_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="ICIAR2018_BACH_Challenge"):
        load_manifest("bach", tmp_path)


# --- Mini-DDSM ----------------------------------------------------------------------------------


def test_miniddsm_layout(tmp_path):
    make_miniddsm(tmp_path)
    df = load_manifest("miniddsm", tmp_path)
    assert df.attrs["classes"] == ["Normal", "Benign", "Cancer"]
    assert len(df) == 10  # masks, .ics files and metadata are not images of the manifest
    assert not df["path"].str.contains("Mask").any()
    assert df.groupby("label").size().to_dict() == {"Normal": 6, "Benign": 2, "Cancer": 2}
    # DDSM case numbers repeat across volumes: the class keeps two women apart
    assert set(df["patient_id"]) == {"Normal/0001", "Normal/0002", "Benign/0029", "Cancer/0001"}
    row = df.set_index("path").loc["MINI-DDSM-Complete-JPEG-8/Benign/0029/C_0029_1.LEFT_MLO.jpg"]
    assert (row["label_index"], row["case"], row["laterality"], row["view"]) == (1, "0029", "LEFT", "MLO")
    same = load_manifest("miniddsm", tmp_path / "MINI-DDSM-Complete-JPEG-8")
    assert same["path"].tolist() == [p.split("/", 1)[1] for p in df["path"]]


def test_miniddsm_image_outside_a_case_folder(tmp_path):
    make_miniddsm(tmp_path)
    write_image(tmp_path / "MINI-DDSM-Complete-JPEG-8" / "Cancer" / "stray.jpg")
    with pytest.raises(ValueError, match="stray.jpg"):
        load_manifest("miniddsm", tmp_path)


# --- CDD-CESM -----------------------------------------------------------------------------------


def test_cddcesm_low_energy_binary(tmp_path):
    make_cddcesm(tmp_path)
    df = load_manifest("cddcesm", tmp_path)  # the spreadsheet is one level down
    assert df.attrs["classes"] == ["normal", "abnormal"]
    assert df["path"].tolist() == [f"CDD-CESM/Low energy images of CDD-CESM/{n}.jpg"
                                   for n in ["P1_L_DM_MLO", "P2_R_DM_CC", "P3_L_DM_CC", "P4_R_DM_MLO"]]
    assert df["label"].tolist() == ["abnormal", "normal", "abnormal", "normal"]
    assert df["pathology"].tolist() == ["malignant", "normal", "benign", "normal"]
    assert df["patient_id"].tolist() == ["1", "2", "3", "4"]
    assert (df["type"] == "DM").all() and df["view"].tolist() == ["MLO", "CC", "CC", "MLO"]


def test_cddcesm_three_classes_and_both_modalities(tmp_path):
    make_cddcesm(tmp_path)
    df = load_manifest("cddcesm", tmp_path / "CDD-CESM", classes="three", modality="both")
    assert df.attrs["classes"] == ["normal", "benign", "malignant"]
    assert len(df) == 7 and df["type"].value_counts().to_dict() == {"DM": 4, "CESM": 3}
    labels = dict(zip(df["image_name"], df["label"]))
    assert labels["P1_L_DM_MLO"] == "malignant" and labels["P3_L_CM_CC"] == "benign"
    assert df.set_index("image_name")["label_index"]["P1_L_CM_MLO"] == 2


def test_cddcesm_rows_and_images_must_agree(tmp_path):
    make_cddcesm(tmp_path, rows=[r for r in CDDCESM_ROWS if r[0] != "P4_R_DM_MLO"] +
                 [("P9_R_DM_CC", 9, "R", "DM", "CC", "Normal")])
    (tmp_path / "CDD-CESM" / "Low energy images of CDD-CESM" / "P9_R_DM_CC.jpg").unlink()
    write_image(tmp_path / "CDD-CESM" / "Low energy images of CDD-CESM" / "P4_R_DM_MLO.jpg")
    with pytest.raises(ValueError, match="P4_R_DM_MLO"):  # an image without a sheet row
        load_manifest("cddcesm", tmp_path)
    (tmp_path / "CDD-CESM" / "Low energy images of CDD-CESM" / "P4_R_DM_MLO.jpg").unlink()
    with pytest.warns(UserWarning, match="P9_R_DM_CC"):  # a row without an image: left out, said
        df = load_manifest("cddcesm", tmp_path)
    assert len(df) == 3


def test_cddcesm_missing_spreadsheet(tmp_path):
    write_image(tmp_path / "Low energy images of CDD-CESM" / "P1_L_DM_CC.jpg")
    with pytest.raises(FileNotFoundError, match="--annotations"):
        load_manifest("cddcesm", tmp_path)
