"""Protocol ``breakhis-official`` in an experiment: the BreakHis authors' five folds
(``data_manifests/breakhis.csv``: official_fold1..5) are five splits and five runs per model."""

from __future__ import annotations

from breastcam.data import read_manifest
from breastcam.data.reference import reference_view
from breastcam.report import load_experiment
from breastcam.reproduce import plan as planning
from breastcam.reproduce.runner import make_splits
from breastcam.resources import data_manifests_dir


def _reference_40x():
    df = read_manifest(data_manifests_dir() / "breakhis.csv")
    view = reference_view(df, "breakhis", label="binary", patient_from="numeric")
    return view[view["magnification"].astype(str) == "40"].reset_index(drop=True)


def test_planned_runs_are_the_five_official_folds(tmp_path):
    exp = load_experiment("ernet-breakhis-official")
    rows = _reference_40x()
    plan = planning.make_plan(exp, tmp_path, out_dir=tmp_path / "out", manifest=rows)
    assert [(j.subset, j.protocol, j.fold) for j in plan.splits] == [
        ("40", "breakhis-official", k) for k in (1, 2, 3, 4, 5)]
    assert [r.split.fold for r in plan.runs] == [1, 2, 3, 4, 5]
    assert {r.group for r in plan.runs} == {("40", "breakhis-official", "ernet50")}  # one mean
    assert all(r.fold is None and r.config["data"]["fold"] is None for r in plan.runs)
    assert len({r.run_dir for r in plan.runs}) == 5
    for job in plan.splits:  # never the repository's own data_manifests/
        job.path = tmp_path / "splits" / f"{job.key}.csv"
    splits = make_splits(plan)
    for k in (1, 2, 3, 4, 5):
        split = splits[f"40-breakhis-official-fold{k}"]
        authors = set(rows.loc[rows[f"official_fold{k}"] == "test", "path"])
        assert set(split.loc[split["split"] == "test", "path"]) == authors
        assert (split["split"] == "val").any()
        train_val = split[split["split"] != "test"]
        assert set(train_val["path"]) == set(rows["path"]) - authors


def test_quick_mode_runs_fold_one():
    exp = load_experiment("ernet-breakhis-official")
    plan = planning.make_plan(exp, ".", out_dir=data_manifests_dir() / "unused", quick=True,
                              manifest=_reference_40x())
    assert [j.key for j in plan.splits] == ["all-breakhis-official-fold1"]
