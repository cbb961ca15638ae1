"""Data randomisation (Adebayo et al. 2018, section 5): the labels are permuted within each split
and nothing else moves; Grad-CAM of a CNN that learnt the squares differs from that of the same
CNN trained on permuted labels while the edge-detector control cannot; ``breastcam sanity
--data-randomisation`` retrains a real run on permuted labels and writes its table, figure and
verdicts (a .keras file is refused: docs/ERRORS.md, data_randomisation_of_a_file)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from breastcam.errors import OutputExistsError
from breastcam.explain.data_randomisation import data_randomisation_check, permuted_label_run, permuted_labels
from breastcam.explain.sanity import CONTROL
from conftest import fit_tinycnn, squares


def test_labels_are_permuted_within_each_split_and_nothing_else_moves():
    rows = pd.DataFrame({"path": [f"f{i}.png" for i in range(40)],
                         "label": ["a", "b"] * 20, "label_index": [0, 1] * 20,
                         "split": ["train"] * 30 + ["val"] * 6 + ["test"] * 4})
    out = permuted_labels(rows, seed=3)
    assert out["path"].tolist() == rows["path"].tolist() and out["split"].tolist() == rows["split"].tolist()
    for split in ("train", "val", "test"):
        ours, theirs = rows[rows["split"] == split], out[out["split"] == split]
        assert sorted(ours["label"]) == sorted(theirs["label"])  # class counts kept
    assert (out["label"] != rows["label"])[rows["split"] == "train"].any()  # shuffled
    assert out["label"][rows["split"] == "test"].tolist() == rows["label"][rows["split"] == "test"].tolist()
    assert (out["label"].map({"a": 0, "b": 1}) == out["label_index"]).all()  # label and index move together
    pd.testing.assert_frame_equal(out, permuted_labels(rows, seed=3))  # seeded
    assert not out.equals(permuted_labels(rows, seed=4))


def test_gradcam_passes_against_a_model_of_permuted_labels_and_the_control_fails():
    x, y = squares(128)
    trained, accuracy = fit_tinycnn(x, y, 8)
    assert accuracy > 0.9  # it learnt the squares
    permuted, _ = fit_tinycnn(x, np.random.default_rng(0).permutation(y), 8)
    result = data_randomisation_check(trained, permuted, x[y == 1][:8], ["gradcam"], n_bootstrap=200)
    assert result.verdicts["gradcam"]["passes"], result.verdicts["gradcam"]
    assert not result.verdicts[CONTROL]["passes"]
    control = result.table[(result.table["method"] == CONTROL) & (result.table["measure"] == "spearman")]
    np.testing.assert_allclose(control["mean"], 1.0, atol=1e-9)
    # the same model against itself is the other end: its maps are the same, so Grad-CAM fails
    same = data_randomisation_check(trained, trained, x[y == 1][:8], ["gradcam"], n_bootstrap=200, control=False)
    assert not same.verdicts["gradcam"]["passes"] and same.verdicts["gradcam"]["spearman"] > 0.99


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    from breastcam.data import make_split, make_synthetic, write_split
    from breastcam.train import run

    tmp = tmp_path_factory.mktemp("data_randomisation")
    df = make_synthetic(tmp / "data", n_patients=6, images_per_patient=2, image_size=(40, 40), seed=0)
    split = tmp / "split.csv"
    write_split(make_split(df, "dala", seed=0), split)
    run_dir = run({"output_dir": str(tmp / "run"), "seed": 0,
                   "data": {"manifest": str(split), "root": str(tmp / "data"), "image_size": 32},
                   "model": {"name": "tinycnn"}, "train": {"batch_size": 4, "epochs": 1}}, verbose=0)
    return run_dir, tmp / "data", pd.read_csv(split)


def test_breastcam_sanity_data_randomisation_on_a_run(synthetic_run, tmp_path, capsys):
    from breastcam.cli import main

    run_dir, root, rows = synthetic_run
    images = [str(root / p) for p in rows["path"][:4]]
    out = tmp_path / "sanity"
    args = ["sanity", "--model", str(run_dir), "--images", *images, "--method", "gradcam", "--steps", "2",
            "--mode", "cascading", "--out", str(out), "--data-randomisation", "--epochs", "2"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "FAILS the data randomisation" in said and "training accuracy" in said
    table = pd.read_csv(out / "data_randomisation.csv")
    assert set(table["method"]) == {"gradcam", CONTROL} and set(table["measure"]) == {"spearman", "ssim", "otsu_kept"}
    summary = json.loads((out / "sanity.json").read_text())["data_randomisation"]
    assert not summary["verdicts"][CONTROL]["passes"] and summary["fit"]["epochs"] == 2
    assert "# Sanity checks: data randomisation" in (out / "sanity.md").read_text()
    figure = cv2.imread(str(out / "data_randomisation.png"))
    assert figure is not None and figure.shape[1] > 200
    # the permuted run is an ordinary run of the same images, labels permuted, its own config
    permuted = pd.read_csv(out / "permuted_labels" / "manifest.csv")
    own = pd.read_csv(run_dir / "split.csv")
    assert permuted["path"].tolist() == own["path"].tolist()
    assert sorted(permuted["label"]) == sorted(own["label"])
    assert (out / "permuted_labels" / "run" / "last.weights.h5").is_file()
    # asked again, the finished permuted run is reused; another seed's labels are refused
    assert main(args) == 0
    with pytest.raises(OutputExistsError, match="other permuted labels"):
        permuted_label_run(run_dir, out / "permuted_labels", seed=1)
