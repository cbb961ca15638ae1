"""Model-randomisation sanity checks (Adebayo et al. 2018): the measures on hand-made maps, a map
from the input alone (an edge detector) fails, Grad-CAM on a trained small CNN passes, the model
is left as it was, and ``breastcam sanity`` writes its table, figure and verdicts."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from breastcam.explain import get_cam
from breastcam.explain.sanity import CONTROL, EdgeMap, layer_groups, otsu_kept, sanity_check, spearman, ssim
from conftest import fit_tinycnn, squares


def test_the_measures_on_hand_made_maps():
    a = np.linspace(0, 1, 64).reshape(8, 8)
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, 1 - a) == pytest.approx(-1.0)
    assert spearman(a, np.zeros_like(a)) == 0.0  # a constant map ranks nothing
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, 1 - a) < 0.0
    half = np.zeros((8, 8))
    half[:, 4:] = 1
    quarter = np.zeros((8, 8))
    quarter[:4, 4:] = 1
    assert otsu_kept(half, half) == 1.0
    assert otsu_kept(half, quarter) == pytest.approx(0.5)  # half of the trained region is left


@pytest.fixture(scope="module")
def trained_cnn():
    x, y = squares()
    model, accuracy = fit_tinycnn(x, y)
    assert accuracy > 0.9  # it learnt the squares
    return model, x[y == 1][:8]


def test_gradcam_on_a_trained_cnn_passes_and_an_edge_detector_fails(trained_cnn):
    model, images = trained_cnn
    before = [np.asarray(w).copy() for w in model.weights]
    result = sanity_check(model, images, {"gradcam": get_cam("gradcam", model)}, steps=4, n_bootstrap=200)
    assert result.verdicts["gradcam"]["passes"]
    assert not result.verdicts[CONTROL]["passes"]  # the control cannot depend on the weights
    for w, value in zip(model.weights, before):  # the model is left as it was
        np.testing.assert_array_equal(np.asarray(w), value)
    table = result.table
    assert set(table["mode"]) == {"cascading", "independent"} and set(table["step"]) == {1, 2, 3, 4}
    control = table[(table["method"] == CONTROL) & (table["measure"] == "spearman")]
    np.testing.assert_allclose(control["mean"], 1.0, atol=1e-9)
    # cascading: with every layer random, less of the trained map is left than after the head alone
    cascade = table[(table["method"] == "gradcam") & (table["mode"] == "cascading") & (table["measure"] == "ssim")]
    assert cascade.set_index("step")["mean"][4] < cascade.set_index("step")["mean"][1]


def test_layer_groups_start_with_the_classifier_and_cover_every_weighted_layer(trained_cnn):
    model, _ = trained_cnn
    groups = layer_groups(model, 3)
    assert groups[0][0] == "logits" and len(groups) == 3
    assert sum(len(g) for _, g in groups) == sum(1 for layer in model.layers if layer.weights)


def test_edge_map_depends_on_the_input_only():
    img = np.zeros((1, 16, 16, 3), np.float32)
    img[0, 4:12, 4:12] = 1.0
    edges = EdgeMap()(img)[0]
    assert edges.shape == (16, 16) and edges.max() == pytest.approx(1.0)
    assert edges[8, 8] == 0.0 and edges[4, 8] > 0.5  # flat inside, high on the border


def test_breastcam_sanity_writes_its_table_figure_and_verdicts(trained_cnn, tmp_path, capsys):
    from breastcam.cli import main

    model, images = trained_cnn
    model.save(tmp_path / "cnn.keras")
    # the images as PNG files: pixels p give the model's input p / 127.5 - 1 (minus_one_one)
    paths = []
    for i, img in enumerate(images[:6]):
        u8 = np.clip(np.rint((img + 1.0) * 127.5), 0, 255).astype(np.uint8)
        paths.append(tmp_path / f"img{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(u8, cv2.COLOR_RGB2BGR))
    out = tmp_path / "sanity"
    assert main(["sanity", "--model", str(tmp_path / "cnn.keras"), "--preprocessing", "minus_one_one",
                 "--images", *map(str, paths), "--method", "gradcam", "eigencam", "--steps", "3",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "gradcam:" in said and "edges (control: ignores the model): FAILS" in said
    table = pd.read_csv(out / "sanity.csv")
    assert set(table["method"]) == {"gradcam", "eigencam", CONTROL}
    assert set(table["measure"]) == {"spearman", "ssim", "otsu_kept"}
    verdicts = json.loads((out / "sanity.json").read_text())
    assert verdicts["cam_layers"] == {"gradcam": "block4_out", "eigencam": "block4_out"}
    assert not verdicts["verdicts"][CONTROL]["passes"]
    assert "| method | verdict |" in (out / "sanity.md").read_text()
    strip = cv2.imread(str(out / "sanity_strip.png"))
    assert strip is not None and strip.shape[0] > 100 and strip.shape[1] > 300
