"""Paper C's offline expansion: training split x6, copies written once and recorded."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from breastcam.augment import expand_modres
from breastcam.data import load_manifest


@pytest.fixture(scope="module")
def split_manifest(breakhis_root):
    df = load_manifest("breakhis", breakhis_root).head(8).reset_index(drop=True)
    df["split"] = ["train", "train", "train", "val", "test", "test", "train", "val"]
    return df


def test_training_split_times_six_rotation_included_by_default(tmp_path, breakhis_root, split_manifest):
    out = expand_modres(split_manifest, breakhis_root, tmp_path / "aug", seed=0)
    counts = out["split"].value_counts()
    before = split_manifest["split"].value_counts()
    # paper 004: flips, rotation +-20 deg, shear (section 3.3) and shift (Algorithm 1)
    assert counts["train"] == 6 * before["train"]
    assert counts["val"] == before["val"] and counts["test"] == before["test"]
    original = out.iloc[: len(split_manifest)]
    pd.testing.assert_frame_equal(
        original[split_manifest.columns], split_manifest, check_dtype=False
    )
    assert (original["augmentation"] == "").all() and (original["augmented_from"] == "").all()
    new = out.iloc[len(split_manifest) :]
    assert (new["split"] == "train").all()
    assert sorted(new["augmentation"].unique()) == ["hflip", "rotate", "shear", "shift", "vflip"]
    train_paths = set(split_manifest.loc[split_manifest["split"] == "train", "path"])
    assert set(new["augmented_from"]) == train_paths
    for _, row in new.iterrows():
        src = split_manifest.loc[split_manifest["path"] == row["augmented_from"]].iloc[0]
        assert row["label"] == src["label"] and row["patient_id"] == src["patient_id"]
        assert Path(row["path"]).is_absolute() and Path(row["path"]).is_file()
    assert (tmp_path / "aug" / "modres.json").is_file()


def test_copies_are_the_named_transforms(tmp_path, breakhis_root, split_manifest):
    out = expand_modres(split_manifest.head(1), breakhis_root, tmp_path, seed=0)
    source = cv2.imread(str(breakhis_root / split_manifest["path"][0]), cv2.IMREAD_UNCHANGED)
    copies = {
        r.augmentation: cv2.imread(r.path, cv2.IMREAD_UNCHANGED) for r in out.iloc[1:].itertuples()
    }
    np.testing.assert_array_equal(copies["hflip"], source[:, ::-1])
    np.testing.assert_array_equal(copies["vflip"], source[::-1])
    for kind in ("shift", "shear", "rotate"):
        assert copies[kind].shape == source.shape and copies[kind].dtype == source.dtype
        assert not np.array_equal(copies[kind], source)


def test_seeded(tmp_path, breakhis_root, split_manifest):
    rows = split_manifest.head(2)

    def shifted(seed, where):
        out = expand_modres(rows, breakhis_root, tmp_path / where, seed=seed, copies=("shift",))
        return [cv2.imread(p) for p in out["path"].iloc[len(rows) :]]

    a, b, c = shifted(0, "a"), shifted(0, "b"), shifted(1, "c")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, z) for x, z in zip(a, c))


def test_threads_do_not_change_the_copies_or_their_order(tmp_path, breakhis_root, split_manifest):
    one = expand_modres(split_manifest, breakhis_root, tmp_path / "one", workers=1)
    four = expand_modres(split_manifest, breakhis_root, tmp_path / "four", workers=4)
    assert one["augmentation"].tolist() == four["augmentation"].tolist()
    assert one["augmented_from"].tolist() == four["augmented_from"].tolist()
    for a, b in zip(one["path"], four["path"]):
        if Path(a).is_absolute():  # a copy: same name under its own out_dir, same pixels
            assert Path(a).relative_to(tmp_path / "one") == Path(b).relative_to(tmp_path / "four")
            np.testing.assert_array_equal(cv2.imread(a, cv2.IMREAD_UNCHANGED), cv2.imread(b, cv2.IMREAD_UNCHANGED))
        else:
            assert a == b


def test_grayscale_films_stay_grayscale(tmp_path, mias_root):
    df = pd.DataFrame({"path": ["mdb001.pgm"], "label": ["normal"], "split": ["train"]})
    out = expand_modres(df, mias_root, tmp_path, copies=("hflip", "shear"))
    copy = cv2.imread(out["path"].iloc[1], cv2.IMREAD_UNCHANGED)
    assert copy.ndim == 2 and copy.shape == (1024, 1024)


def test_bad_input_is_explained(tmp_path, breakhis_root, split_manifest):
    with pytest.raises(ValueError, match="'split'"):
        expand_modres(split_manifest.drop(columns="split"), breakhis_root, tmp_path)
    with pytest.raises(ValueError, match="copies"):
        expand_modres(split_manifest, breakhis_root, tmp_path, copies=("hflip", "zoom"))
    only_test = split_manifest.assign(split="test")
    with pytest.raises(ValueError, match="no rows with split == 'train'"):
        expand_modres(only_test, breakhis_root, tmp_path)
