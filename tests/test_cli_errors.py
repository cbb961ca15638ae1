"""The bad-input cases of docs/ERRORS.md through the command line.

Each case makes its files in tmp_path (no committed binaries), runs ``breastcam.cli.main`` in
process and checks the exit code, that stderr holds one ``breastcam CMD: error:`` paragraph and
no traceback, and that the message names the file or value. 16-bit, RGBA and grayscale PNGs are
valid inputs (converted to 8-bit RGB): their case is that ``validate`` accepts them.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from breastcam.cli import main

RNG = np.random.default_rng(0)
CLASSES = ["benign", "malignant"]
SPLITS = ["train", "train", "val", "test"]  # per class


def _png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def _dataset(root: Path) -> Path:
    """8 valid 24x24 PNGs, 2 classes, a split column; returns the manifest path."""
    rows = []
    for ci, label in enumerate(CLASSES):
        for i, split in enumerate(SPLITS):
            rel = f"{label}_{i}.png"
            _png(root / rel, RNG.integers(0, 256, (24, 24, 3), dtype=np.uint8))
            rows.append(dict(path=rel, label=label, label_index=ci, patient_id=f"p{ci}{i}",
                             split=split))
    manifest = root / "split.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def _config(root: Path, manifest: Path, **data) -> Path:
    cfg = {"name": "t", "output_dir": str(root / "run"),
           "data": {"manifest": str(manifest), "root": str(root), "image_size": 32,
                    "preprocessing": "minus_one_one", "cache": None, **data},
           "model": {"name": "mobilenetv2", "weights": None},
           "train": {"epochs": 1, "batch_size": 2, "deterministic": False}}
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _replace(root: Path, rel: str, data: bytes) -> str:
    (root / rel).write_bytes(data)
    return rel


def _good_png_bytes() -> bytes:
    ok, buf = cv2.imencode(".png", RNG.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def _corrupt_middle() -> bytes:
    data = bytearray(_good_png_bytes())
    middle = len(data) // 2  # inside IDAT; header and IEND intact
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    return bytes(data)


def _set_row(manifest: Path, index: int, **values) -> None:
    df = pd.read_csv(manifest, keep_default_na=False)
    for key, value in values.items():
        df.loc[index, key] = value
    df.to_csv(manifest, index=False)


# --- the cases: each returns (argv, exit code, words the message must hold) ------------------

def case_zero_byte(root, manifest):
    rel = _replace(root, "benign_0.png", b"")
    return ["train", "--config", str(_config(root, manifest))], 1, [rel, "empty (0 bytes)"]


def case_truncated(root, manifest):
    rel = _replace(root, "benign_0.png", _good_png_bytes()[:300])
    return ["train", "--config", str(_config(root, manifest))], 1, [rel, "truncated"]


def case_corrupt_middle_png(root, manifest):
    rel = _replace(root, "benign_1.png", _corrupt_middle())
    return ["train", "--config", str(_config(root, manifest))], 1, [rel, "CRC"]


def case_text_named_png(root, manifest):
    rel = _replace(root, "malignant_0.png", b"patient notes, not an image\n" * 4)
    return ["train", "--config", str(_config(root, manifest))], 1, [rel, "not a readable image"]


def case_unreadable_tiff(root, manifest):
    (root / "benign_0.tif").write_bytes(b"II*\x00\x08\x00\x00\x00" + b"\xff" * 120)
    _set_row(manifest, 0, path="benign_0.tif")
    return ["train", "--config", str(_config(root, manifest))], 1, ["benign_0.tif", "not a readable image"]


def case_16bit_png(root, manifest):
    _png(root / "benign_0.png", (RNG.integers(0, 4096, (24, 24))).astype(np.uint16))
    return ["validate", str(manifest)], 0, ["OK: 8 image(s)"]


def case_rgba_png(root, manifest):
    _png(root / "benign_0.png", RNG.integers(0, 256, (24, 24, 4), dtype=np.uint8))
    return ["validate", str(manifest)], 0, ["OK: 8 image(s)"]


def case_grayscale_png(root, manifest):
    _png(root / "benign_0.png", RNG.integers(0, 256, (24, 24), dtype=np.uint8))
    return ["validate", str(manifest)], 0, ["OK: 8 image(s)"]


def case_one_pixel(root, manifest):
    _png(root / "malignant_1.png", np.zeros((1, 1, 3), np.uint8))
    return ["train", "--config", str(_config(root, manifest))], 1, ["malignant_1.png", "1x1 pixels"]


def case_missing_file(root, manifest):
    (root / "malignant_0.png").unlink()
    return ["train", "--config", str(_config(root, manifest))], 1, ["malignant_0.png", "does not exist"]


def case_unknown_label(root, manifest):
    _set_row(manifest, 1, label="bening")
    return (["validate", str(manifest), "--classes", ",".join(CLASSES)], 1,
            ["benign_1.png", "unknown-label", "'bening'"])


def case_empty_class(root, manifest):
    return (["validate", str(manifest), "--classes", "benign,malignant,normal"], 1,
            ["empty-class", "'normal'"])


def case_duplicate_rows(root, manifest):
    df = pd.read_csv(manifest, keep_default_na=False)
    pd.concat([df, df.iloc[[2]]]).to_csv(manifest, index=False)
    return ["validate", str(manifest)], 1, ["benign_2.png", "duplicate-path"]


def case_missing_column(root, manifest):
    pd.read_csv(manifest).drop(columns=["label_index"]).to_csv(manifest, index=False)
    return ["validate", str(manifest)], 1, [manifest.name, "label_index"]


def case_config_typo_depth_2(root, manifest):
    return (["train", "--config", str(_config(root, manifest)), "--set", "train.optimiser.name=sgd"],
            1, ["unknown key train.optimiser", "did you mean train.optimizer?"])


def case_weights_of_another_model(root, manifest):
    from breastcam.models import build

    weights = root / "mobilenetv2.weights.h5"
    build("mobilenetv2", 2, (32, 32, 3)).save_weights(str(weights))
    _png(root / "x.png", RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return (["explain", "--model", "ernet18", "--weights", str(weights), "--input-size", "32",
             "--images", str(root / "x.png"), "--out", str(root / "out"), "--quiet"], 1,
            [weights.name, "does not fit model 'ernet18'"])


def case_unfitted_macenko(root, manifest):
    ref = root / "reference.json"
    ref.write_text(json.dumps({"format": "breastcam.stain.Macenko", "version": 1, "params": {}}))
    cfg = _config(root, manifest, stain={"method": "macenko", "reference": str(ref)})
    return ["train", "--config", str(cfg)], 1, ["reference.json", "not fitted"]


def case_lambda_layer_model(root, manifest):
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    path = root / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    _png(root / "x.png", RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return (["explain", "--model", str(path), "--images", str(root / "x.png"),
             "--out", str(root / "out"), "--quiet"], 1, ["lambda.keras", "Lambda"])


def _bomb_png(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` (the data is a few bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def case_predict_run_folder(root, manifest):
    """A run folder given to predict (a natural first try) is a model: it just works."""
    assert main(["train", "--config", str(_config(root, manifest)), "--quiet"]) == 0
    return ["predict", str(root / "run"), str(root / "benign_3.png")], 0, ["benign_3.png", "prob_benign"]


def case_output_dir_is_a_file(root, manifest):
    (root / "taken").write_text("not a folder")
    return (["train", "--config", str(_config(root, manifest)), "--set", f"output_dir={root / 'taken'}"], 1,
            ["taken", "existing file, not a folder"])


def case_binary_manifest(root, manifest):
    (root / "noise.csv").write_bytes(bytes(RNG.integers(128, 256, 512, dtype=np.uint8)))
    return ["validate", str(root / "noise.csv")], 1, ["noise.csv", "not a CSV text file"]


def case_header_only_manifest(root, manifest):
    (root / "empty.csv").write_text("path,label,label_index,patient_id,split\n")
    return ["validate", str(root / "empty.csv")], 1, ["no rows"]


def case_misspelt_split(root, manifest):
    _set_row(manifest, 0, split="tset")
    return ["train", "--config", str(_config(root, manifest))], 1, ["'tset'", "not train, val or test", "line(s) [2]"]


def case_decompression_bomb(root, manifest):
    rel = _replace(root, "benign_1.png", _bomb_png(20_000, 20_000))
    return ["train", "--config", str(_config(root, manifest))], 1, [rel, "20000x20000", "data.max_image_pixels"]


def case_path_outside_root(root, manifest):
    _set_row(manifest, 0, path="../../etc/passwd")
    return ["train", "--config", str(_config(root, manifest))], 1, ["../../etc/passwd", "leave the data root"]


def case_unknown_model_option(root, manifest):
    return (["train", "--config", str(_config(root, manifest)), "--set", "model.options={attention_stage: 4}"], 1,
            ["mobilenetv2", "takes no option(s) ['attention_stage']"])


def case_mc_dropout_without_dropout(root, manifest):
    """MobileNetV2 with breastcam's default head has no dropout: nothing for MC dropout to sample."""
    assert main(["train", "--config", str(_config(root, manifest)), "--quiet"]) == 0
    return (["evaluate", str(root / "run"), "--uncertainty", "mc:8", "--n-bootstrap", "0"], 2,
            ["has no Dropout layer", "tta:K"])


def case_explain_target_out_of_range(root, manifest):
    """A class index the model does not have failed inside TensorFlow (GatherV2 out of range)."""
    _png(root / "x.png", RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return (["explain", "--model", "tinycnn", "--input-size", "32", "--target", "5", "--images",
             str(root / "x.png"), "--out", str(root / "out"), "--quiet"], 1,
            ["target class 5 does not exist", "2 classes (0 to 1"])


def case_explain_batch_size_zero(root, manifest):
    """--batch-size 0 ended in ``range() arg 3 must not be zero``; counts are checked by argparse."""
    _png(root / "x.png", RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return (["explain", "--model", "tinycnn", "--batch-size", "0", "--images", str(root / "x.png"),
             "--out", str(root / "out")], 2, ["--batch-size", "must be at least 1, got 0"])


def case_negative_seed_in_config(root, manifest):
    """seed: -1 reached NumPy's seeding and ended in ``ValueError: Seed must be between 0 and 2**32 - 1``."""
    return (["train", "--config", str(_config(root, manifest)), "--set", "seed=-1"], 1,
            ["seed must be an integer from 0 to 4294967295", "got -1"])


def case_negative_seed_option(root, manifest):
    """``split --seed -1`` ended in scikit-learn's InvalidParameterError traceback."""
    return (["split", str(manifest), "--protocol", "dala", "--seed", "-1", "--out", str(root / "s.csv")], 2,
            ["--seed", "a seed must be from 0 to 4294967295, got -1"])


def case_official_only_option(root, manifest):
    """--val-fraction with another protocol was silently ignored (the split kept its own ratios)."""
    return (["split", str(manifest), "--protocol", "dala", "--val-fraction", "0.2", "--out", str(root / "s.csv")], 2,
            ["--val-fraction applies to --protocol breakhis-official only"])


def case_output_folder_is_a_file(root, manifest):
    """``--out`` naming an existing file ended in a FileExistsError traceback from mkdir."""
    image = _png(root / "x.png", RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return (["explain", "--model", "tinycnn", "--input-size", "32", "--images", str(image), "--out", str(image),
             "--quiet"], 1, ["cannot make the folder", "x.png", "a file of that name exists"])


def case_sanity_one_image(root, manifest):
    """The sanity check reports intervals over images: one image is refused before any work."""
    assert main(["train", "--config", str(_config(root, manifest)), "--quiet"]) == 0
    return (["sanity", "--model", str(root / "run"), "--images", str(root / "benign_1.png"),
             "--out", str(root / "s")], 1, ["at least 2 images"])


def case_data_randomisation_of_a_file(root, manifest):
    """Retraining on permuted labels needs a run's config: a bare .keras file is refused at once."""
    from breastcam.models import build

    build("tinycnn", 2, (32, 32, 3), weights=None).save(root / "own.keras")
    return (["sanity", "--model", str(root / "own.keras"), "--preprocessing", "minus_one_one", "--images",
             str(root / "benign_1.png"), str(root / "benign_2.png"), "--out", str(root / "s"),
             "--data-randomisation"], 2, ["--data-randomisation retrains", "own.keras", "give a run folder"])


CASES = {name[len("case_"):]: fn for name, fn in dict(globals()).items() if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_clean_message(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest = _dataset(tmp_path)
    argv, code, words = CASES[name](tmp_path, manifest)
    capsys.readouterr()
    try:
        got = main(argv)
    except SystemExit as stop:  # argparse's usage errors exit (2) before a command runs
        got = stop.code
    assert got == code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    text = out + err  # validate prints its problem report (one line per problem) on stdout
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    if code and argv[0] != "validate":
        command = argv[0]
        errors = [line for line in err.splitlines() if line.startswith(f"breastcam {command}: error: ")]
        assert len(errors) == 1, err  # one paragraph


def test_the_table_lists_every_case():
    table = Path("docs/ERRORS.md").read_text()
    for name in CASES:
        assert f"`{name}`" in table, name


def test_all_bad_files_are_reported_at_once(tmp_path, capsys):
    manifest = _dataset(tmp_path)
    _replace(tmp_path, "benign_0.png", b"")
    _replace(tmp_path, "malignant_2.png", _corrupt_middle())
    _replace(tmp_path, "benign_3.png", b"")
    assert main(["train", "--config", str(_config(tmp_path, manifest))]) == 1
    err = capsys.readouterr().err
    assert "2 of 6 image file(s)" in err  # train + val rows; the test rows are not read
    assert "benign_0.png" in err and "malignant_2.png" in err
    assert "benign_3.png" not in err  # test split: training does not read it
    assert not (tmp_path / "run" / "best.keras").exists()


def test_skip_records_the_skipped_files_in_run_info(tmp_path):
    from breastcam.data.preflight import preflight

    manifest = _dataset(tmp_path)
    _replace(tmp_path, "benign_0.png", b"")
    df = pd.read_csv(manifest, keep_default_na=False)
    kept, skipped = preflight(df, tmp_path, on_bad_image="skip")
    assert len(kept) == len(df) - 1 and skipped == [("benign_0.png", "the file is empty (0 bytes)")]


@pytest.mark.slow
def test_skip_trains_and_writes_run_info(tmp_path):
    manifest = _dataset(tmp_path)
    _replace(tmp_path, "benign_0.png", b"")
    cfg = _config(tmp_path, manifest, on_bad_image="skip")
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["skipped_images"] == [{"path": "benign_0.png", "reason": "the file is empty (0 bytes)"}]


def test_a_corrected_config_takes_over_the_folder_of_a_run_that_never_trained(tmp_path, capsys):
    """A config error stops a run before its first epoch, after its folder was claimed: the
    corrected config was then refused ("already holds a run with a different config") until the
    folder was deleted by hand. A folder whose run trained is still never taken over."""
    cfg = str(_config(tmp_path, _dataset(tmp_path)))
    run = tmp_path / "run"
    assert main(["train", "--config", cfg, "--set", "model.options={attention_stage: 4}"]) == 1
    assert (run / "config.yaml").exists() and (run / "split.csv").exists()  # set up, never trained
    (run / "stain.json").write_text("{}")  # a set-up file the corrected config does not write
    capsys.readouterr()
    assert main(["train", "--config", cfg, "--set", "model.name=tinycnn", "--quiet"]) == 0, capsys.readouterr().err
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert "tinycnn" in (run / "config.yaml").read_text() and not (run / "stain.json").exists()
    capsys.readouterr()
    assert main(["train", "--config", cfg, "--set", "model.name=tinycnn", "train.epochs=2"]) == 1
    err = capsys.readouterr().err
    assert "already holds a run with a different config" in err and "best.keras" in err, err


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, capsys, monkeypatch):
    """Ctrl-C used to end in a TensorFlow-deep traceback; now one line says what goes on (for
    train: the same command resumes) and the exit code is the shell's for SIGINT."""
    import breastcam.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(breastcam.train, "run", interrupted)
    cfg = str(_config(tmp_path, _dataset(tmp_path)))
    capsys.readouterr()
    assert main(["train", "--config", cfg]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "breastcam train: interrupted; the same command resumes the run from its last finished epoch"
    with pytest.raises(KeyboardInterrupt):  # --debug keeps the traceback
        main(["--debug", "train", "--config", cfg])


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", "train", "--config", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "breastcam train: error: run config" in err


def test_usage_error_exits_2(tmp_path, capsys):
    cfg = _config(tmp_path, _dataset(tmp_path))
    assert main(["train", "--config", str(cfg), "--set", "epochs"]) == 2
    assert "section.key=value" in capsys.readouterr().err


def test_error_wrapped_by_tensorflow_is_found():
    import tensorflow as tf

    from breastcam.console import find_breastcam_error
    from breastcam.data.decode import BadImageError

    def fail(_):
        raise BadImageError("a/b.tif", "the contents are not a readable image")

    ds = tf.data.Dataset.from_tensors(1).map(lambda x: tf.numpy_function(fail, [x], tf.uint8))
    with pytest.raises(tf.errors.OpError) as info:
        list(ds)  # a bad image met mid-epoch: TensorFlow re-raises it as its own error
    found = find_breastcam_error(info.value)
    assert found is not None and str(found).startswith("cannot read image a/b.tif: the contents")
    assert find_breastcam_error(ValueError("plain bug")) is None


def test_reproduce_checks_every_file_of_its_plan_before_any_run(tmp_path):
    from breastcam.errors import DataError
    from breastcam.report import load_experiment
    from breastcam.reproduce import check_plan_files
    from breastcam.reproduce import plan as planning

    rows = []
    for p in range(12):
        rel = f"p{p}.png"
        _png(tmp_path / rel, RNG.integers(0, 256, (24, 24, 3), dtype=np.uint8))
        rows.append({"path": rel, "label": CLASSES[p % 2], "label_index": p % 2,
                     "patient_id": str(p), "magnification": 40})
    _replace(tmp_path, "p3.png", b"")
    _replace(tmp_path, "p7.png", _corrupt_middle())
    plan = planning.make_plan(load_experiment("dala-breakhis"), tmp_path, quick=True,
                              out_dir=tmp_path / "out", manifest=pd.DataFrame(rows))
    with pytest.raises(DataError) as info:
        check_plan_files(plan, log=lambda _: None)
    assert "p3.png" in str(info.value) and "p7.png" in str(info.value)
    assert not (tmp_path / "out" / "runs").exists()


def test_a_wrong_root_is_named_as_such(tmp_path):
    from breastcam.data.preflight import preflight
    from breastcam.errors import DataError

    df = pd.read_csv(_dataset(tmp_path), keep_default_na=False)
    with pytest.raises(DataError, match="check the dataset root"):
        preflight(df, tmp_path / "elsewhere")
