"""Manifests of the real samples (BreakHis, mini-MIAS), manifest I/O and the folder loader."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from breastcam.cli import main
from breastcam.data import DATASETS, load_manifest, read_manifest, write_manifest
from breastcam.data.loaders import mias_lesion_mask
from breastcam.data.manifest import file_sha256


# --- BreakHis ------------------------------------------------------------------------------


def test_breakhis_manifest_matches_labels_csv(breakhis_root):
    df = load_manifest("breakhis", breakhis_root)
    truth = pd.read_csv(breakhis_root / "labels.csv", dtype=str).set_index("relpath")
    on_disk = sorted(p.relative_to(breakhis_root).as_posix() for p in breakhis_root.rglob("*.png"))
    assert df["path"].tolist() == on_disk and len(df) == 20
    truth = truth.loc[df["path"]]
    assert df["label"].tolist() == truth["label"].tolist()
    assert df["patient_id"].tolist() == truth["patient_id"].tolist()
    assert df["magnification"].tolist() == [int(m.rstrip("X")) for m in truth["magnification"]]
    assert df["subtype"].tolist() == truth["tumor_type_name"].str.replace(" ", "_").tolist()
    assert df["tumor_type"].tolist() == truth["tumor_type"].tolist()
    assert ("14-" + df["slide"]).tolist() == truth["slide_id"].tolist()
    assert df["label_index"].tolist() == [0 if v == "benign" else 1 for v in df["label"]]
    assert list(df.columns[:4]) == ["path", "label", "label_index", "patient_id"]
    assert df.attrs["classes"] == ["benign", "malignant"]


def test_breakhis_options(breakhis_root):
    df = load_manifest("breakhis", breakhis_root, magnification=40)
    assert len(df) == 7 and set(df["magnification"]) == {40}
    assert len(load_manifest("breakhis", breakhis_root, magnification=["100X", 200])) == 3
    slide = load_manifest("breakhis", breakhis_root, patient_from="slide")
    assert slide["patient_id"].nunique() == 11  # 22549AB and 22549CD are two slides, one patient
    assert {"22549AB", "22549CD"} <= set(slide["patient_id"])
    sub = load_manifest("breakhis", breakhis_root, label="subtype")
    assert sub.attrs["classes"][0] == "adenosis" and len(sub.attrs["classes"]) == 8
    first = sub.set_index("path").loc[sub["path"][0]]
    assert first["label"] == "adenosis" and first["label_index"] == 0
    assert set(sub["label"]) == set(sub["subtype"])


def test_breakhis_root_below_the_tree(breakhis_root):
    benign = breakhis_root / "BreaKHis_v1" / "histology_slides" / "breast" / "benign"
    df = load_manifest("breakhis", benign)
    assert len(df) == 9 and set(df["label"]) == {"benign"}
    assert df["path"].str.startswith("SOB/").all()


def test_breakhis_unparsable_names_are_listed(tmp_path, breakhis_root):
    src = next(breakhis_root.rglob("SOB_B_*.png"))
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src, tmp_path / "SOB_B_XX-14-1-40-001.png")  # unknown tumour type
    shutil.copy(src, tmp_path / "SOB_M_A-14-1-40-001.png")  # malignant class, benign type
    with pytest.raises(ValueError) as err:
        load_manifest("breakhis", tmp_path)
    assert "SOB_B_XX-14-1-40-001.png" in str(err.value)
    assert "SOB_M_A-14-1-40-001.png" in str(err.value)


def test_breakhis_bad_option_and_empty_filter(breakhis_root, tmp_path):
    with pytest.raises(ValueError, match="magnification"):
        load_manifest("breakhis", breakhis_root, magnification=50)
    with pytest.raises(ValueError, match="no SOB_"):
        load_manifest("breakhis", tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_manifest("breakhis", tmp_path / "nowhere")


# --- mini-MIAS -----------------------------------------------------------------------------


def test_mias_one_row_per_image_matches_labels_csv(mias_root):
    df = load_manifest("mias", mias_root)
    truth = pd.read_csv(mias_root.parent / "labels.csv", dtype=str, keep_default_na=False)
    assert len(df) == 62 == truth["relpath"].nunique()
    per_image = truth.groupby("refnum").agg(label=("image_label", "first"),
                                           pair=("patient_pair", "first"),
                                           tissue=("tissue", "first"),
                                           rows=("abnormality", "size"))
    per_image = per_image.loc[df["refnum"]]
    assert df["label"].tolist() == per_image["label"].tolist()
    assert df["patient_id"].tolist() == per_image["pair"].tolist()
    assert df["tissue"].tolist() == per_image["tissue"].tolist()
    assert df["label"].value_counts().to_dict() == {"normal": 24, "malignant": 20, "benign": 18}
    assert df["patient_id"].nunique() == 31
    # lesions: one entry per non-NORM annotation row, coordinates as in Info.txt
    lesions = {ref: json.loads(s) for ref, s in zip(df["refnum"], df["lesions"])}
    abnormal = truth[truth["abnormality"] != "NORM"]
    assert sum(len(v) for v in lesions.values()) == len(abnormal)
    for _, row in abnormal.iterrows():
        xs = [(l["x"], l["y"], l["radius"]) for l in lesions[row["refnum"]]]
        # labels.csv splits "*NOTE 3*" (calcifications without a location) into x and y
        want = tuple(int(v) if v.isdigit() else None for v in (row["x"], row["y"], row["radius"]))
        assert want in xs
    assert lesions["mdb245"] == [{"x": None, "y": None, "radius": None, "abnormality": "CALC",
                                  "severity": "M"}]


def test_mias_binary_and_parent_root(mias_root):
    df = load_manifest("mias", mias_root.parent, classes="binary")
    assert df["path"].str.startswith("all-mias/").all()
    assert df.attrs["classes"] == ["normal", "abnormal"]
    assert df["label"].value_counts().to_dict() == {"abnormal": 38, "normal": 24}


def test_mias_lesion_mask_geometry(mias_root):
    manifest = load_manifest("mias", mias_root).set_index("refnum")
    flip = mias_lesion_mask(manifest.loc["mdb002"])  # x 522 y 280 r 69: origin bottom-left
    assert flip[1024 - 280, 522] and not flip[280, 522]
    row = manifest.loc["mdb001"]  # x 535 y 425 r 197
    mask = mias_lesion_mask(row)
    assert mask.shape == (1024, 1024) and mask.dtype == np.bool_
    assert abs(int(mask.sum()) - np.pi * 197**2) / (np.pi * 197**2) < 0.01
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max()) == (599 - 197, 599 + 197)
    assert (cols.min(), cols.max()) == (535 - 197, 535 + 197)
    small = mias_lesion_mask(row["lesions"], shape=(256, 128))  # rows /4, columns /8
    rows, cols = np.nonzero(small)
    assert abs(rows.mean() - 599 / 4) < 1 and abs(cols.mean() - 535 / 8) < 1
    assert not mias_lesion_mask("[]").any()
    unlocated = [{"x": None, "y": None, "radius": None, "abnormality": "CALC", "severity": "M"}]
    assert not mias_lesion_mask(unlocated).any()


def test_mias_image_without_info_row_is_an_error(tmp_path, mias_root):
    shutil.copy(mias_root / "Info.txt", tmp_path / "Info.txt")
    shutil.copy(mias_root / "mdb001.pgm", tmp_path / "mdb001.pgm")
    assert len(load_manifest("mias", tmp_path)) == 1  # rows of absent images are ignored
    (tmp_path / "Info.txt").write_text(
        (mias_root / "Info.txt").read_text(encoding="latin-1").replace("mdb001 G CIRC", "mdbXXX G CIRC"))
    with pytest.raises(ValueError, match="mdb001.pgm"):
        load_manifest("mias", tmp_path)


# --- manifest files, dispatch, folder loader -----------------------------------------------


def test_manifest_round_trip_keeps_types(tmp_path, breakhis_root):
    df = load_manifest("breakhis", breakhis_root)
    df.loc[0, "patient_id"] = "00042"  # leading zeros must survive
    digest = write_manifest(df, tmp_path / "m.csv")
    assert digest == file_sha256(tmp_path / "m.csv")
    back = read_manifest(tmp_path / "m.csv")
    assert back["patient_id"][0] == "00042"
    assert back["label_index"].dtype.kind == "i" and back["magnification"].dtype.kind == "i"
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert b"\r\n" not in (tmp_path / "m.csv").read_bytes()


def test_read_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="breastcam manifest"):
        read_manifest(tmp_path / "absent.csv")
    (tmp_path / "bad.csv").write_text("path,label\na.png,x\n")
    with pytest.raises(ValueError, match=r"missing column.*label_index"):
        read_manifest(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text("path,label,label_index,patient_id\na.png,x,one,\n")
    with pytest.raises(ValueError, match="line"):
        read_manifest(tmp_path / "bad2.csv")


def test_load_manifest_rejects_unknown_dataset_and_option(breakhis_root):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_manifest("inbreast", breakhis_root)
    with pytest.raises(ValueError, match=r"option\(s\) \['classes'\] do not apply"):
        load_manifest("breakhis", breakhis_root, classes="binary")
    assert set(DATASETS) == {"breakhis", "bach", "miniddsm", "cddcesm", "mias", "folder"}
    assert DATASETS["bach"].classes == ("Normal", "Benign", "InSitu", "Invasive")


def test_folder_loader(tmp_path):
    from fixtures_layouts import write_image

    for i, name in enumerate(["P01_a.png", "P01_b.png", "sub/P02_c.jpg"]):
        write_image(tmp_path / "tumour" / name, value=i)
    write_image(tmp_path / "healthy" / "P03_d.bmp", value=9)
    (tmp_path / "healthy" / ".DS_Store").write_text("x")  # hidden: ignored
    df = load_manifest("folder", tmp_path, patient_regex=r"(P\d+)_")
    assert df.attrs["classes"] == ["healthy", "tumour"]
    assert df["path"].tolist() == ["healthy/P03_d.bmp", "tumour/P01_a.png", "tumour/P01_b.png",
                                   "tumour/sub/P02_c.jpg"]
    assert df["patient_id"].tolist() == ["P03", "P01", "P01", "P02"]
    assert df["label_index"].tolist() == [0, 1, 1, 1]
    ordered = load_manifest("folder", tmp_path, classes=["tumour", "healthy"])
    assert ordered.set_index("path")["label_index"]["healthy/P03_d.bmp"] == 1
    assert (ordered["patient_id"] == "").all()
    (tmp_path / "tumour" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="notes.txt"):
        load_manifest("folder", tmp_path)
    assert len(load_manifest("folder", tmp_path, ignore_other=True)) == 4
    with pytest.raises(ValueError, match="does not match"):
        load_manifest("folder", tmp_path, patient_regex=r"^Q", ignore_other=True)


# --- CLI ------------------------------------------------------------------------------------


def test_cli_manifest(tmp_path, breakhis_root, mias_root, capsys):
    out = tmp_path / "m.csv"
    assert main(["manifest", "breakhis", str(breakhis_root), "--out", str(out),
                 "--magnification", "40", "400"]) == 0
    text = capsys.readouterr().out
    assert "17 images, 9 patients" in text and file_sha256(out) in text
    assert set(read_manifest(out)["magnification"]) == {40, 400}
    assert main(["manifest", "mias", str(mias_root), "--out", str(tmp_path / "mias.csv"),
                 "--classes", "binary"]) == 0
    assert len(read_manifest(tmp_path / "mias.csv")) == 62
    assert main(["manifest", "mias", str(mias_root), "--out", str(out), "--magnification", "40"]) == 1
    assert "do not apply" in capsys.readouterr().err
