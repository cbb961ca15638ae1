"""A normal CLI call prints no TensorFlow start-up lines; --verbose keeps them; --quiet turns
progress bars off."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from breastcam import console
from breastcam.cli import main

# Lines TensorFlow / absl print on import or device probing (oneDNN notice, CUDA, CPU features).
TF_STARTUP = ("oneDNN", "cuda", "absl::InitializeLog", "cpu_feature_guard", "I0000", "E0000")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "breastcam", *args], capture_output=True,
                           text=True, env=env, timeout=300)


@pytest.mark.slow
def test_a_normal_call_prints_no_tensorflow_startup_lines():
    quiet = _run("models", "--names", "mobilenetv2", "--input-size", "32", "--no-flops")
    assert quiet.returncode == 0, quiet.stderr
    assert "mobilenetv2" in quiet.stdout
    assert not [w for w in TF_STARTUP if w in quiet.stderr], quiet.stderr
    helped = _run("models", "--help")
    assert helped.returncode == 0 and helped.stderr == ""


def test_a_corrupt_image_is_reported_once_without_opencv_log_lines(tmp_path):
    """OpenCV logged ``[ERROR:0@1.2] global loadsave.cpp ... imdecode_ ... can't read data`` for a
    truncated PGM before breastcam's own line naming the file: one problem, said twice."""
    import cv2
    import numpy as np
    import pandas as pd

    assert cv2.imwrite(str(tmp_path / "good.pgm"), np.full((40, 40), 120, np.uint8))
    whole = cv2.imencode(".pgm", np.arange(1600, dtype=np.uint8).reshape(40, 40))[1].tobytes()
    (tmp_path / "cut.pgm").write_bytes(whole[:len(whole) // 2])
    pd.DataFrame({"path": ["good.pgm", "cut.pgm"], "label": ["a", "b"], "label_index": [0, 1],
                  "patient_id": ["p1", "p2"]}).to_csv(tmp_path / "m.csv", index=False)
    done = _run("validate", str(tmp_path / "m.csv"), "--root", str(tmp_path))
    assert done.returncode == 1, done.stderr
    assert "cut.pgm" in done.stdout and "good.pgm" not in done.stdout
    assert "imdecode" not in done.stderr and "[ERROR" not in done.stderr, done.stderr


def _tiny_manifest(path):
    import pandas as pd

    pd.DataFrame({"path": [f"{i}.png" for i in range(8)], "label": ["a"] * 4 + ["b"] * 4,
                  "label_index": [0] * 4 + [1] * 4, "patient_id": [f"p{i}" for i in range(8)]}).to_csv(path, index=False)
    return str(path)


def test_breastcams_warnings_are_one_line(tmp_path):
    """Python's default printed breastcam's file, line number and source line under the message."""
    done = _run("split", _tiny_manifest(tmp_path / "m.csv"), "--protocol", "dala", "--seed", "0",
                "--out", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("breastcam split: warning: validation split: "), done.stderr
    assert len(done.stderr.splitlines()) == 1 and "splits.py" not in done.stderr, done.stderr


def test_a_caller_recording_warnings_still_gets_them(tmp_path, capsys):
    from breastcam.data.splits import SplitWarning

    with pytest.warns(SplitWarning, match="without stratification"):
        assert main(["split", _tiny_manifest(tmp_path / "m.csv"), "--protocol", "dala", "--out",
                     str(tmp_path / "s.csv")]) == 0


def test_silenced_fd2_restores_stderr_and_replays_on_failure(capfd):
    with console.silenced_fd2():
        os.write(2, b"hidden\n")
    os.write(2, b"shown\n")
    with pytest.raises(RuntimeError):
        with console.silenced_fd2():
            os.write(2, b"kept because the body failed\n")
            raise RuntimeError("boom")
    err = capfd.readouterr().err
    assert "hidden" not in err and "shown" in err and "kept because the body failed" in err


@pytest.mark.parametrize("argv", [["--quiet", "models", "--names", "mobilenetv2", "--no-flops",
                                   "--input-size", "32"],
                                  ["models", "--names", "mobilenetv2", "--no-flops",
                                   "--input-size", "32", "--quiet"]])
def test_quiet_before_or_after_the_command_turns_bars_off(argv, capsys):
    try:
        assert main(argv) == 0
        assert not console.progress_enabled()
        items = [1, 2, 3]
        assert console.progress(items, desc="x") is items  # no bar object at all
    finally:
        console.set_progress(True)


@pytest.mark.slow
def test_train_prints_no_tensorflow_error_lines_at_the_first_epoch(tmp_path):
    """`breastcam train` used to print ``E0000 ... NodeDef mentions attribute
    use_unbounded_threadpool`` at every first epoch: an "error" nobody can act on."""
    from breastcam.data import make_split, make_synthetic, write_split

    df = make_synthetic(tmp_path / "data", n_patients=6, images_per_patient=2, image_size=(48, 48), seed=0)
    write_split(make_split(df, "dala", group="patient", seed=0), tmp_path / "split.csv")
    sets = [f"data.manifest={tmp_path / 'split.csv'}", f"data.root={tmp_path / 'data'}", "data.image_size=32",
            "model.name=tinycnn", "model.weights=null", "model.options={}", "train.epochs=1", "train.batch_size=4",
            f"output_dir={tmp_path / 'run'}", "data.cache=null"]
    config = os.path.join(os.path.dirname(__file__), "..", "experiments", "protocols", "dala.yaml")
    done = _run("train", "--config", config, "--quiet", "--set", *sets)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "E0000" not in done.stderr and "use_unbounded_threadpool" not in done.stderr, done.stderr[-3000:]
