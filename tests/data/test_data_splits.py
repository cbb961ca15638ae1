"""Protocol splits: sizes, stratification, patient grouping, folds, determinism, safe writing."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from breastcam.cli import main
from breastcam.data import fold_view, load_manifest, make_split, read_manifest, write_manifest, write_split
from breastcam.data.manifest import file_sha256
from breastcam.data.splits import SplitWarning, describe_split, patient_overlap, split_sizes


def synthetic_manifest(n_patients: int = 82, seed: int = 1) -> pd.DataFrame:
    """BreakHis-sized: 82 patients (24 benign), 20-180 images each, one class per patient."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = "benign" if p < 24 else "malignant"
        rows += [{"path": f"{p}/{i}.png", "label": label, "label_index": int(label == "malignant"),
                  "patient_id": str(p)} for i in range(int(rng.integers(20, 180)))]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n, sizes", [
    (1995, (1197, 199, 599)), (2081, (1249, 208, 624)), (2013, (1208, 201, 604)),
    (1820, (1092, 182, 546)), (400, (240, 40, 120)), (2000, (1200, 200, 600)),
])
def test_dala_sizes_match_the_papers_table_vi(n, sizes):
    got = split_sizes(n, {"train": 0.6, "val": 0.1, "test": 0.3})
    assert (got["train"], got["val"], got["test"]) == sizes


def test_image_level_split_is_stratified_with_exact_sizes():
    df = pd.DataFrame({"path": [f"{i}.png" for i in range(1995)],
                       "label": ["a"] * 600 + ["b"] * 1395, "patient_id": ""})
    df["label_index"] = (df["label"] == "b").astype(int)
    out = make_split(df, "dala", seed=3)
    table = describe_split(out)
    assert table["images"].to_dict() == {"train": 1197, "val": 199, "test": 599}
    share = table["a"] / table["images"]
    assert (abs(share - 600 / 1995) < 0.01).all()
    assert out["path"].tolist() == df["path"].tolist()  # rows keep their order


@pytest.mark.parametrize("protocol, ratios", [
    ("dala", {"train": 0.6, "val": 0.1, "test": 0.3}),
    ("modres", {"train": 0.6, "val": 0.2, "test": 0.2}),
    ("ernet", {"train": 0.7, "test": 0.3}),
])
def test_patient_split_sizes_within_one_patient(protocol, ratios):
    df = synthetic_manifest()
    biggest = df.groupby("patient_id").size().max()
    tests = []
    for seed in (0, 1):
        out = make_split(df, protocol, group="patient", seed=seed)
        assert patient_overlap(out) == []
        table = describe_split(out)
        for split, ratio in ratios.items():
            assert abs(table.loc[split, "images"] - ratio * len(df)) <= biggest
            share = table.loc[split, "malignant"] / table.loc[split, "images"]
            assert abs(share - (df["label"] == "malignant").mean()) < 0.05
        tests.append(set(out.loc[out["split"] == "test", "patient_id"]))
    assert tests[0] != tests[1]  # the seed really changes the split


def test_real_breakhis_patient_split(breakhis_root):
    df = load_manifest("breakhis", breakhis_root)
    out = make_split(df, "dala", group="patient", seed=0)
    assert patient_overlap(out) == []
    biggest = df.groupby("patient_id").size().max()
    table = describe_split(out)
    for split, ratio in {"train": 0.6, "val": 0.1, "test": 0.3}.items():
        assert abs(table.loc[split, "images"] - ratio * 20) <= biggest
    assert out.groupby("patient_id")["split"].nunique().max() == 1
    image_level = make_split(df, "dala", seed=0)
    assert describe_split(image_level)["images"].to_dict() == {"train": 12, "val": 2, "test": 6}
    assert patient_overlap(image_level)  # the leak the patient protocol exists to avoid


def test_tiny_unbalanced_sets_split_with_warnings_not_errors(breakhis_root):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for mag in (40, 400):
            df = load_manifest("breakhis", breakhis_root, magnification=mag)
            for protocol in ("dala", "ernet", "modres"):
                for group in (None, "patient"):
                    out = make_split(df, protocol, group=group, seed=0)
                    assert set(out["split"]) <= {"train", "val", "test"}
                    assert (out["split"] == "test").any()
    messages = [str(w.message) for w in caught if issubclass(w.category, SplitWarning)]
    assert messages and all("n_splits" not in m for m in messages)
    assert any("benign" in m for m in messages)


def test_ernet_folds_and_fold_view(breakhis_root):
    df = load_manifest("breakhis", breakhis_root)
    for group in (None, "patient"):
        out = make_split(df, "ernet", group=group, seed=0)
        assert set(out["split"]) == {"train", "test"}
        assert (out.loc[out["split"] == "test", "fold"] == -1).all()
        trainval = out[out["split"] != "test"]
        assert sorted(set(trainval["fold"])) == [0, 1, 2, 3, 4]
        for k in range(5):
            view = fold_view(out, k)
            assert (view.loc[view["fold"] == k, "split"] == "val").all()
            assert set(view.loc[(view["fold"] != k) & (view["fold"] >= 0), "split"]) == {"train"}
            assert view["split"].eq("test").sum() == out["split"].eq("test").sum()
            if group:
                assert patient_overlap(view) == []
    with pytest.raises(ValueError, match="fold 7"):
        fold_view(out, 7)
    with pytest.raises(ValueError, match="ernet"):
        fold_view(make_split(df, "dala"), 0)


def test_split_is_deterministic_and_replaces_old_columns(breakhis_root):
    df = load_manifest("breakhis", breakhis_root)
    a = make_split(df, "modres", group="patient", seed=5)
    b = make_split(make_split(df, "ernet", seed=1), "modres", group="patient", seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert "fold" not in b.columns


def test_grouping_needs_patient_ids():
    df = pd.DataFrame({"path": [f"{i}.tif" for i in range(12)], "label": ["x", "y"] * 6,
                       "label_index": [0, 1] * 6, "patient_id": ""})
    with pytest.raises(ValueError, match="no patient_id"):
        make_split(df, "dala", group="patient")
    with pytest.warns(SplitWarning, match="without stratification"):  # 1 val image, 2 classes
        assert len(make_split(df, "dala")) == 12
    with pytest.raises(ValueError, match="unknown split protocol"):
        make_split(df, "kfold")


def test_write_split_never_silently_overwrites(tmp_path, breakhis_root):
    df = load_manifest("breakhis", breakhis_root)
    path = tmp_path / "split.csv"
    first = make_split(df, "dala", seed=0)
    digest = write_split(first, path)
    assert digest == file_sha256(path)
    mtime = path.stat().st_mtime_ns
    assert write_split(first, path) == digest and path.stat().st_mtime_ns == mtime  # no-op
    other = make_split(df, "dala", seed=1)
    with pytest.raises(FileExistsError, match="force"):
        write_split(other, path)
    assert file_sha256(path) == digest
    assert write_split(other, path, force=True) == file_sha256(path) != digest
    columns = read_manifest(path).columns.tolist()
    assert columns[:4] == ["path", "label", "label_index", "patient_id"] and columns[-1] == "split"


def test_cli_split_twice_gives_identical_bytes(tmp_path, breakhis_root, capsys):
    manifest = tmp_path / "m.csv"
    write_manifest(load_manifest("breakhis", breakhis_root), manifest)
    args = ["split", str(manifest), "--protocol", "dala", "--group", "patient", "--seed", "0"]
    assert main(args + ["--out", str(tmp_path / "s1.csv")]) == 0
    out = capsys.readouterr().out
    assert file_sha256(tmp_path / "s1.csv") in out
    assert "patients in more than one split: 0" in out
    assert main(args + ["--out", str(tmp_path / "s2.csv")]) == 0
    assert (tmp_path / "s1.csv").read_bytes() == (tmp_path / "s2.csv").read_bytes()
    assert main(args + ["--out", str(tmp_path / "s1.csv")]) == 0  # same content: fine
    changed = ["split", str(manifest), "--protocol", "dala", "--seed", "1", "--out", str(tmp_path / "s1.csv")]
    assert main(changed) == 1
    assert "--force" in capsys.readouterr().err
    assert main(changed + ["--force"]) == 0
    assert main(["split", str(manifest), "--protocol", "ernet", "--out", str(tmp_path / "e.csv")]) == 0
    split = read_manifest(tmp_path / "e.csv")
    assert split.columns[-2:].tolist() == ["split", "fold"] and split["fold"].dtype.kind == "i"
