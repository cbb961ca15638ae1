"""breastcam.data.synthetic.make_synthetic: deterministic files, a sound manifest, real signal."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from breastcam.data.synthetic import CLASSES, make_synthetic

KWARGS = dict(n_patients=6, images_per_patient=3, image_size=(64, 80))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    return make_synthetic(out, seed=3, **KWARGS), out


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(synthetic, tmp_path):
    _, first = synthetic
    make_synthetic(tmp_path / "again", seed=3, **KWARGS)
    make_synthetic(tmp_path / "other", seed=4, **KWARGS)
    again, other = _files(tmp_path / "again"), _files(tmp_path / "other")
    assert _files(first) == again
    assert len(again) == 18 + 1  # images + manifest.csv
    differing = [p for p in again if p.suffix == ".png" and again[p] != other[p]]
    assert len(differing) == 18


def test_manifest_columns_balance_and_patients(synthetic):
    df, out = synthetic
    assert list(df.columns) == ["path", "label", "label_index", "patient_id", "magnification"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "manifest.csv", dtype={"patient_id": str}), df)
    assert df["label"].value_counts().to_dict() == {"benign": 9, "malignant": 9}
    assert (df["label"] == [CLASSES[i] for i in df["label_index"]]).all()
    assert (df["magnification"] == 40).all()
    per_patient = df.groupby("patient_id")
    assert per_patient.ngroups == 6 and (per_patient.size() == 3).all()
    assert (per_patient["label"].nunique() == 1).all()  # one class per patient
    assert df.attrs["classes"] == list(CLASSES)


def test_images_are_rgb_of_the_requested_size(synthetic):
    df, out = synthetic
    for rel in df["path"]:
        image = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
        assert image.shape == (64, 80, 3) and image.dtype == np.uint8


def _nucleus_fraction(path) -> float:
    """Share of hematoxylin-dark pixels: red well below the pink background's."""
    rgb = cv2.imread(str(path))[:, :, ::-1].astype(int)
    return float(((rgb[:, :, 0] < 170) & (rgb[:, :, 2] > rgb[:, :, 1])).mean())


def test_malignant_tiles_hold_more_nuclear_material(synthetic):
    df, out = synthetic
    fraction = df["path"].map(lambda rel: _nucleus_fraction(out / rel))
    benign, malignant = fraction[df["label"] == "benign"], fraction[df["label"] == "malignant"]
    assert malignant.min() > benign.max()  # every malignant tile above every benign one
    assert 0.005 < benign.mean() and malignant.mean() < 0.6  # both look like tissue


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_patients"):
        make_synthetic(tmp_path, n_patients=1)
    with pytest.raises(ValueError, match="image_size"):
        make_synthetic(tmp_path, image_size=(8, 8))
