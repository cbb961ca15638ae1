"""Study mode without training: --plan writes plan.json / runs.txt / configs, --collect before
any run lists every run as missing, bad --run / --run-index / flag mixes are refused."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from breastcam.cli import main
from breastcam.errors import RunStateError
from breastcam.reproduce import gather
from breastcam.reproduce.claim import LOCK_NAME
from breastcam.reproduce.cost import estimate
from breastcam.reproduce.study import plan_study, run_planned
from fixtures_study import make_tiny_experiment

IDS = ["all-ernet/tinycnn/fold_0", "all-patient/tinycnn/fold_0"]


@pytest.fixture(scope="module")
def planned(breakhis_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, plan_study(make_tiny_experiment(), breakhis_root, out, quick=True)


def test_plan_writes_plan_json_runs_txt_and_configs_and_trains_nothing(planned):
    out, study = planned
    folder = out / "ernet-depth"
    on_disk = json.loads((folder / "plan.json").read_text())
    assert on_disk == json.loads(json.dumps(study))
    assert [e["id"] for e in on_disk["runs"]] == IDS
    assert [e["index"] for e in on_disk["runs"]] == [0, 1]
    for entry in on_disk["runs"]:
        cfg = yaml.safe_load(Path(entry["config"]).read_text())
        assert cfg["output_dir"] == entry["run_dir"] and Path(entry["run_dir"]).is_absolute()
        assert Path(cfg["data"]["manifest"]).is_file()  # the split exists already
        assert Path(cfg["data"]["stain"]["reference"]).is_file()  # paper B's reference, fitted once
        assert cfg["data"]["image_size"] == 32 and cfg["train"]["epochs"] == 1
        assert not Path(entry["run_dir"]).exists()  # nothing trained
    lines = (folder / "runs.txt").read_text().splitlines()
    assert len(lines) == 2
    for line, run_id in zip(lines, IDS):
        argv = shlex.split(line)
        assert argv[:3] == ["breastcam", "reproduce", "ernet-depth"]
        assert argv[argv.index("--out") + 1] == str(out.resolve())
        assert argv[argv.index("--run") + 1] == run_id


def test_plan_cli_prints_run_count_and_cost_estimate(breakhis_root, tmp_path, capsys):
    code = main(["reproduce", "ernet-depth", "--data-dir", str(breakhis_root), "--quick",
                 "--plan", "--out", str(tmp_path), "--models", "ernet18"])
    text = capsys.readouterr().out
    assert code == 0
    # the quick block keeps one protocol (experiments/ernet/depth.yaml): one run
    assert "1 run(s) planned" in text and "an estimate" in text and "--array=0-0" in text
    study = json.loads((tmp_path / "ernet-depth" / "plan.json").read_text())
    table = estimate(study)
    # ERNet-18 at 64x64: 0.298 analytic GFLOPs (`breastcam models`' count)
    assert table["gflops"].tolist() == pytest.approx([0.298], abs=1e-3)
    row = table.iloc[0]
    expected = row.gflops * ((3 * row.train + row.val) * row.epochs + row.test) / 1e3
    assert row.tflop == pytest.approx(expected, rel=1e-9)
    assert row.train + row.val + row.test == 20  # the 20 sample images, fold 0's view


def test_collect_before_any_run_reports_every_run_missing(planned, capsys):
    out, _ = planned
    code = main(["reproduce", "ernet-depth", "--out", str(out), "--collect"])
    text = capsys.readouterr().out
    assert code == 1  # report written, study not complete
    assert "0 of 2 run(s) finished" in text
    folder = out / "ernet-depth"
    missing = json.loads((folder / "missing.json").read_text())
    assert [run for run, _ in missing] == IDS
    assert all("not started" in why for _, why in missing)
    assert "run not finished" in (folder / "index.html").read_text()


def test_run_states_read_from_the_run_directories(planned, tmp_path):
    _, study = planned
    entry = dict(study["runs"][0], run_dir=str(tmp_path / "r"))
    run_dir = tmp_path / "r"
    assert gather.run_state(entry, None)[0] == gather.NOT_STARTED
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("{}")
    assert gather.run_state(entry, None)[0] == gather.INTERRUPTED
    (run_dir / "failure.json").write_text(json.dumps({"error": "ValueError: bad"}))
    assert gather.run_state(entry, None) == (gather.FAILED, "ValueError: bad")
    (run_dir / LOCK_NAME).write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert gather.run_state(entry, None)[0] == gather.RUNNING  # a retry is under way
    (run_dir / LOCK_NAME).unlink()
    (run_dir / "status.json").write_text(json.dumps({"state": "finished"}))
    (run_dir / "metrics.json").write_text("{}")
    (run_dir / "failure.json").unlink()
    assert gather.run_state(entry, None)[0] == gather.FINISHED


def test_bad_run_choices_are_refused_with_the_way_out(planned, tmp_path, capsys):
    out, _ = planned
    base = ["reproduce", "ernet-depth", "--out", str(out)]
    assert main(base + ["--run-index", "2"]) != 0
    assert "indices 0..1" in capsys.readouterr().err
    assert main(base + ["--run", "all-ernet/vgg16/run"]) != 0
    assert "not a run of the plan" in capsys.readouterr().err
    assert main(base + ["--run-index", "0", "--data-dir", "x"]) != 0
    assert "only apply when planning" in capsys.readouterr().err
    assert main(base + ["--collect", "--gpus", "0"]) != 0
    assert "--gpus goes with --workers" in capsys.readouterr().err
    with pytest.raises(RunStateError, match="no study plan"):
        run_planned(tmp_path / "ernet-depth", index=0)
