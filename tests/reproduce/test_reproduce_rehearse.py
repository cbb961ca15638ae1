"""``reproduce --rehearse``: the whole plan through the real training path, a few steps per run.

One tiny rehearsal (tinycnn at 32 px on the 20 BreakHis sample images, no stain step): two
planned runs, one trained for 2 steps, the other projected from it."""

from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path

import pytest

from breastcam.errors import UsageError
from breastcam.reproduce.rehearse import pick_runs, rehearse
from fixtures_study import make_tiny_experiment


def _tiny_tinycnn() -> dict:
    exp = make_tiny_experiment()  # tinycnn already
    exp["train"] = {k: v for k, v in exp["train"].items() if k != "stain"}  # keep it cheap
    exp["quick"] = {**exp["quick"], "batch_size": 4, "epochs": 3, "models": ["tinycnn"]}
    return exp


def test_rehearsal_trains_a_few_steps_and_projects_every_planned_run(breakhis_root, tmp_path,
                                                                     monkeypatch):
    md = rehearse(_tiny_tinycnn(), breakhis_root, steps=2, out_dir=tmp_path, quick=True,
                  pick="model", log=lambda _: None)
    assert md == tmp_path / "ernet-depth" / "rehearsal.md"
    summary = json.loads(md.with_suffix(".json").read_text())
    assert summary["runs_planned"] == 2 and summary["runs_measured"] == 1
    assert summary["runs_failed"] == 0 and summary["runs_unprojected"] == []
    measured, projected = summary["runs"]
    assert measured["measured"] and not projected["measured"]
    assert projected["source"] == measured["id"] and projected["id"] != measured["id"]
    assert measured["steps_run"] == 2 and measured["val_steps_run"] >= 1
    for row in summary["runs"]:
        for key in ("time_to_first_batch_s", "step_s", "train_img_s", "decode_img_s",
                    "peak_rss_mb", "checkpoint_mb", "cache_mb", "projected_s", "step_cpu_s",
                    "projected_cpu_s"):
            assert row[key] > 0, key
        assert row["time_to_first_batch_s"] >= row["first_step_s"]
        assert row["peak_rss_mb"] > 50  # TensorFlow alone takes more
        assert row["cache_mb"] == pytest.approx((row["train"] + row["val"]) * 32 * 32 * 3 / 2**20)
        assert row["steps_per_epoch"] == math.ceil(row["train"] / 4) and row["epochs"] == 3
        # three epochs of every step cannot take less than the steps themselves
        assert row["projected_s"] >= row["time_to_first_batch_s"] + (3 * row["steps_per_epoch"] - 1) * row["step_s"] * 0.999
    text = md.read_text()
    assert "projected full protocol on this machine" in text and "| decode img/s |" in text
    assert not (Path.cwd() / "data_manifests" / "ernet-depth").exists()  # splits stay in scratch

    # benchmarks/scale_rehearsal.py reads the same JSON (here as both fractions)
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "scale_rehearsal.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--small", str(tmp_path), "--large",
                                      str(tmp_path), "--out", str(tmp_path / "scale.md")])
    runpy.run_path(str(script), run_name="__main__")
    scale = (tmp_path / "scale.md").read_text()
    assert f"| ernet-depth | 10 % | {summary['images']} | 2 / 1 / 0 |" in scale
    assert "| ernet-depth | 1.0x | " in scale and "| dala-bach | 10 % | not run |" in scale


def test_rehearsal_of_an_experiment_that_trains_nothing_says_so(breakhis_root, tmp_path, capsys):
    from breastcam.cli import main

    assert main(["reproduce", "dala-data", "--data-dir", str(breakhis_root), "--rehearse",
                 "--out", str(tmp_path)]) == 0
    md = tmp_path / "dala-data" / "rehearsal.md"
    assert capsys.readouterr().out.strip().endswith(str(md))
    assert "trains nothing of its own" in md.read_text()
    assert json.loads(md.with_suffix(".json").read_text())["runs_planned"] == 0


def test_rehearsal_refuses_bad_steps_and_picks(breakhis_root, tmp_path):
    with pytest.raises(UsageError, match="--steps 0"):
        rehearse("ernet-depth", breakhis_root, steps=0, out_dir=tmp_path)
    with pytest.raises(UsageError, match="--rehearse-runs 'some'"):
        rehearse("ernet-depth", breakhis_root, pick="some", out_dir=tmp_path)
    entries = [{"id": f"{g}/{m}/fold_{f}", "group": [g, "ernet", m]}
               for g in ("40", "100") for m in ("a", "b") for f in (0, 1)]
    assert len(pick_runs(entries, "all")) == 8
    assert [e["id"] for e in pick_runs(entries, "group")] == [
        "40/a/fold_0", "40/b/fold_0", "100/a/fold_0", "100/b/fold_0"]
    assert [e["id"] for e in pick_runs(entries, "model")] == ["40/a/fold_0", "40/b/fold_0"]
