"""``breastcam export`` never deletes an existing destination unless ``--force`` says so, and even
then replaces only a previous export."""

from __future__ import annotations

import json

import keras
import pytest

from breastcam.cli import main
from breastcam.errors import RunStateError
from breastcam.export import METADATA, export_model


def _tiny():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x), name="tiny")


def _export(out, **kwargs):
    return export_model(_tiny(), out, class_names=["a", "b"], preprocessing="zero_one",
                        cam_params={"n_samples": 2}, **kwargs)


def test_export_refuses_an_existing_destination_unless_forced(tmp_path):
    out = _export(tmp_path / "sm")
    (out / "marker").write_text("previous export")
    with pytest.raises(RunStateError, match="already exists.*--force"):
        _export(out)
    assert (out / "marker").is_file()  # untouched
    _export(out, force=True)
    assert not (out / "marker").exists() and (out / METADATA).is_file() and (out / "saved_model.pb").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["sm"]  # no staging folder left behind


def test_export_force_never_replaces_a_folder_that_is_not_an_export(tmp_path):
    folder = tmp_path / "my_results"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    with pytest.raises(RunStateError, match="not a breastcam SavedModel export"):
        _export(folder, force=True)
    assert (folder / "thesis.tex").read_text() == "precious"


def test_export_keras_format_refuses_an_existing_file(tmp_path):
    out = _export(tmp_path / "model.keras", format="keras")
    with pytest.raises(RunStateError, match="already exists"):
        _export(out, format="keras")
    assert _export(out, format="keras", force=True) == out


def test_cli_export_refuses_an_existing_out_before_loading_the_model(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.keras").write_text("never read: the destination is checked first")
    (run_dir / "run_info.json").write_text(json.dumps({"class_names": ["a", "b"], "preprocessing": "zero_one"}))
    (run_dir / "config.yaml").write_text("model: {name: tinycnn}\n")
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    try:
        code, message = main(["export", str(run_dir), "--out", str(out)]), capsys.readouterr().err
    except RunStateError as err:  # before the CLI's error contract prints breastcam's errors
        code, message = 1, str(err)
    assert code == 1 and "already exists" in message and "--force" in message
    assert (out / "keep.txt").read_text() == "keep"
