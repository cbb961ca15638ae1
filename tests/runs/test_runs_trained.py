"""``Run`` and ``TrainedModel``: one object from the run folder to every command that serves it.

Serving equals evaluation, model by model: ``evaluate``'s path (``predict_run``), the run
folder given to ``predict``, and the exported SavedModel (raw images of any size in, the run's
Macenko normaliser inside) agree within 1e-5, for a Macenko run of each ERNet depth. ONNX and
LiteRT files of the three papers' models agree with ``evaluate`` within 1e-4. Every export
carries its model card.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from breastcam.cli import main
from breastcam.errors import ConfigError, MissingFileError, ModelFileError
from breastcam.evaluate.rundir import predict_run
from breastcam.export import Predictor, export_run, run_converted
from breastcam.runs import Run, TrainedModel, files, load_trained
from helpers_runs import CLASSES, make_run, sample_rows

PROBS = [f"prob_{c}" for c in CLASSES]
REPO = Path(__file__).resolve().parents[2]


def _images(root, rows):
    return [str(root / p) for p in rows["path"]]


@pytest.fixture(scope="module")
def tiny_run(breakhis_root, tmp_path_factory):
    rows = sample_rows(breakhis_root)
    return make_run(tmp_path_factory.mktemp("tiny") / "run", "tinycnn", breakhis_root, rows, stain=True), rows


def test_run_reads_the_config_typed(tiny_run):
    run_dir, rows = tiny_run
    run = Run.open(run_dir)
    assert run.model_name == "tinycnn" and run.image_size == (64, 64)
    assert run.preprocessing == "minus_one_one" and run.class_names() == CLASSES
    assert run.finished and run.has_model
    assert len(run.split_sha256) == 64 and run.stain_config["method"] == "macenko"
    assert run.rows("test")["path"].tolist() == rows["path"].tolist()


def test_trained_model_carries_the_fitted_stain(tiny_run, breakhis_root):
    run_dir, rows = tiny_run
    trained = Run.open(run_dir).trained_model()
    assert trained.stain is not None and trained.stain.counting is False
    pixels = trained.read(_images(breakhis_root, rows))
    assert pixels.dtype == np.uint8 and pixels.shape == (4, 64, 64, 3)
    # The normaliser changes the network's input (else this test could not tell it was skipped).
    plain = TrainedModel(trained.network, CLASSES, trained.image_size, trained.preprocessing)
    assert np.max(np.abs(plain.predict(pixels) - trained.predict(pixels))) > 1e-5
    # Raw images of any size through __call__ (the serving graph) = resized pixels through predict.
    from breastcam.data.decode import read_image

    raw = read_image(_images(breakhis_root, rows)[0])[None].astype(np.float32)
    np.testing.assert_allclose(trained(raw).numpy(), trained.predict(pixels[:1]), atol=1e-5)


def test_open_names_what_is_wrong(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist: not a run directory"):
        Run.open(tmp_path / "nope")
    with pytest.raises(MissingFileError, match="not a run directory"):
        Run.open(tmp_path)
    (tmp_path / files.CONFIG).write_text("model: {name: tinycnn}\n")
    with pytest.raises(MissingFileError, match="has not finished training"):
        Run.open(tmp_path).model_path()


def test_a_users_own_keras_model_needs_its_preprocessing(tmp_path):
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")],
                           name="user_cnn")
    net.save(tmp_path / "user.keras")
    with pytest.raises(ConfigError, match="--preprocessing"):
        load_trained(tmp_path / "user.keras")
    trained = load_trained(tmp_path / "user.keras", preprocessing="zero_one")
    assert trained.image_size == (32, 32) and trained.stain is None
    with pytest.raises(ModelFileError, match="SavedModel"):
        (tmp_path / "sm").mkdir()
        (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
        load_trained(tmp_path / "sm")


def test_export_verifies_and_writes_the_model_card(tiny_run, breakhis_root, tmp_path):
    run_dir, rows = tiny_run
    frame, _ = predict_run(run_dir)
    (run_dir / "metrics.json").write_text(json.dumps({
        "n": 4, "accuracy": 0.5, "roc_auc": 0.75, "ece": 0.1, "brier": 0.3,
        "ci": {"accuracy": [0.25, 0.75], "roc_auc": [0.5, 1.0]}, "run": {"split": "test"}}))
    out = export_run(run_dir, "savedmodel", tmp_path / "sm")
    meta = json.loads((out / "breastcam.json").read_text())
    assert meta["verified"]["max_abs_difference"] <= 1e-5 and meta["verified"]["images"] == 4
    assert meta["stain"]["stain_matrix"] and meta["run"]["manifest_sha256"] == Run.open(run_dir).split_sha256
    card = json.loads((out / "model_card.json").read_text())
    assert card["model"]["name"] == "tinycnn"
    assert card["preprocessing"]["stain"]["method"] == "macenko"
    assert card["training_data"]["manifest_sha256"] == Run.open(run_dir).split_sha256
    assert card["training_data"]["protocol"] == "dala"
    assert card["metrics"]["breastcam"]["accuracy"] == {"value": 0.5, "ci95": [0.25, 0.75]}
    assert "not for diagnosis" in card["intended_use"].lower() or "not a medical device" in card["intended_use"].lower()
    assert card["limitations"] and card["out_of_scope"]
    text = (out / "model_card.md").read_text()
    for needle in ("# Model card: tinycnn", "Macenko", "| accuracy | 0.5000 | [0.2500, 0.7500] |",
                   "## Intended use", "## Limitations", "tf.saved_model.load", card["training_data"]["manifest_sha256"]):
        assert needle in text, needle
    got = Predictor(out).predict(Predictor(out).load(_images(breakhis_root, rows)))
    np.testing.assert_allclose(got, frame[PROBS].to_numpy(), atol=1e-5)


def test_keras_export_restores_the_pipeline(tiny_run, breakhis_root, tmp_path):
    run_dir, rows = tiny_run
    frame, _ = predict_run(run_dir)
    path = export_run(run_dir, "keras", tmp_path / "m.keras")
    trained = load_trained(path)
    assert trained.stain is not None and trained.class_names == CLASSES
    np.testing.assert_allclose(trained.predict(trained.read(_images(breakhis_root, rows))),
                               frame[PROBS].to_numpy(), atol=1e-5)


def test_no_module_outside_the_run_package_names_the_checkpoint():
    """File names and the preprocessing decision live in breastcam/runs only."""
    offenders = []
    for path in sorted((REPO / "breastcam").rglob("*.py")):
        if path.parent.name == "runs":
            continue
        text = path.read_text()
        if "best.keras" in text or re.search(r"\.preprocessing\s+if|or\s+spec\([^)]*\)\.preprocessing|"
                                             r"or\s+models\.spec\([^)]*\)\.preprocessing", text):
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ernet18", "ernet34", "ernet50", "ernet101"])
def test_macenko_run_of_each_ernet_depth_serves_what_it_evaluates(name, breakhis_root, tmp_path):
    rows = sample_rows(breakhis_root)
    run_dir = make_run(tmp_path / "run", name, breakhis_root, rows, stain=True)
    evaluated, _ = predict_run(run_dir)
    expected = evaluated[PROBS].to_numpy()
    assert main(["export", str(run_dir), "--out", str(tmp_path / "sm")]) == 0
    assert main(["predict", str(tmp_path / "sm"), *_images(breakhis_root, rows), "--out", str(tmp_path / "p1")]) == 0
    assert main(["predict", str(run_dir), *_images(breakhis_root, rows), "--out", str(tmp_path / "p2")]) == 0
    for folder in ("p1", "p2"):
        got = pd.read_csv(tmp_path / folder / "predictions.csv")[PROBS].to_numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=folder)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dalaresnet50", "ernet50", "resnet50_frozen10"])
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_onnx_and_litert_exports_agree_with_evaluate(name, fmt, breakhis_root, tmp_path, capsys):
    pytest.importorskip("onnxruntime" if fmt == "onnx" else "ai_edge_litert")
    rows = sample_rows(breakhis_root)
    run_dir = make_run(tmp_path / "run", name, breakhis_root, rows, stain=(name == "ernet50"))
    evaluated, _ = predict_run(run_dir)
    path = export_run(run_dir, fmt)
    meta = json.loads(path.with_suffix(".json").read_text())
    trained = Run.open(run_dir).trained_model()
    pixels = trained.read(_images(breakhis_root, rows))
    if trained.stain is not None and not meta["stain_in_file"]:
        # The converter refused an op of the normaliser: said in one line, naming it; the file
        # then takes normalised pixels, as the metadata and the card say.
        assert re.search(r"cannot take \w+", capsys.readouterr().out)
        assert "Macenko-normalised" in meta["input"]
        pixels = trained.stain.transform(pixels).numpy()
    got = run_converted(path, fmt, pixels.astype(np.float32))
    np.testing.assert_allclose(got, evaluated[PROBS].to_numpy(), atol=1e-4)
    assert (path.parent / "model_card.md").is_file()
