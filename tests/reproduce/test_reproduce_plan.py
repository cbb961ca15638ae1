"""Planning and splitting without training: subsets, protocols, quick sampling, split files."""

from __future__ import annotations

import pandas as pd
import pytest

from breastcam.report import list_experiments, load_experiment, published_tables
from breastcam.reproduce import plan as planning
from breastcam.reproduce.runner import make_splits


def _manifest(n_patients: int = 12, per_patient: int = 4) -> pd.DataFrame:
    rows = []
    for p in range(n_patients):
        label = p % 2
        for i in range(per_patient):
            rows.append({"path": f"p{p}/img{i}.png", "label": ["benign", "malignant"][label],
                         "label_index": label, "patient_id": str(p),
                         "magnification": [40, 100][i % 2]})
    return pd.DataFrame(rows)


def test_reproduce_list_covers_every_experiment_yaml():
    names = {name for name, _, _ in list_experiments()}
    assert {"dala-breakhis", "dala-bach", "dala-miniddsm", "dala-placement", "dala-params",
            "dala-cam", "dala-curves", "dala-data", "ernet-breakhis", "ernet-depth",
            "modres-cddcesm", "modres-mias"} <= names
    # every published table is reproduced by some experiment (001 VII / IX repeat 000 6 / 7)
    listed = {p for n in names for p in load_experiment(n)["published"]}
    for table in published_tables():
        rel = f"{table.path.parent.parent.name}/published/{table.path.name}"
        if table.path.name not in ("001_table7.csv", "001_table9.csv"):
            assert rel in listed, rel


def test_reproduce_quick_sample_keeps_patients_whole_and_both_classes():
    df = _manifest(12, 4)
    small = planning.quick_sample(df, 18, seed=0)
    assert len(small) == 16  # whole patients of 4 images: 4 fit into 18
    assert set(small["label_index"]) == {0, 1}
    per = small.groupby("patient_id").size()
    assert (per == 4).all()
    assert planning.quick_sample(df, 18, seed=0).equals(small)  # deterministic


def test_reproduce_plan_separate_subsets_and_split_paths(tmp_path):
    exp = load_experiment("dala-breakhis")
    plan = planning.make_plan(exp, tmp_path, out_dir=tmp_path / "out", manifest=_manifest(),
                              models=["dalaresnet50", "resnet50"])
    keys = [s.key for s in plan.splits]
    assert keys == ["40-dala", "100-dala", "40-patient", "100-patient"]
    assert plan.splits[0].path == planning.REPO / "data_manifests" / "dala-breakhis" / "40-dala.csv"
    assert len(plan.runs) == 8
    run = plan.runs[0]
    assert run.config["data"]["image_size"] == 224 and run.config["model"]["weights"] == "imagenet"
    assert run.config["model"]["options"]["attention_stage"] == 4
    assert any("200: no images" in n for n in plan.notes)  # values without images are noted


def test_reproduce_plan_quick_pools_subsets_and_uses_quick_block(tmp_path):
    exp = load_experiment("ernet-breakhis")
    plan = planning.make_plan(exp, tmp_path, out_dir=tmp_path / "out", quick=True,
                              manifest=_manifest())
    assert [s.key for s in plan.splits] == ["all-ernet"]  # quick.protocols: [ernet]
    assert plan.report_by == "magnification"
    assert [r.fold for r in plan.runs if r.split.protocol == "ernet"] == [0, 1]
    cfg = plan.runs[0].config
    assert cfg["model"]["weights"] is None and cfg["data"]["image_size"] == 64
    assert cfg["train"]["epochs"] == 1 and cfg["train"]["optimizer"]["beta_1"] == 0.6
    assert cfg["train"]["run_eagerly"] is True  # quick: no graph tracing of ERNet-50
    assert plan.splits[0].path.parent == tmp_path / "out" / "splits"
    assert any("pooled" in n for n in plan.notes)


def test_reproduce_plan_skips_unsplittable_subset_with_note(tmp_path):
    df = _manifest(12, 4)
    df.loc[(df["magnification"] == 100), "label_index"] = 0  # 100X: one class only
    df.loc[(df["magnification"] == 100), "label"] = "benign"
    plan = planning.make_plan(load_experiment("dala-breakhis"), tmp_path, out_dir=tmp_path,
                              manifest=df, protocols=["dala"], models=["resnet50"])
    assert [s.key for s in plan.splits] == ["40-dala"]
    assert any("magnification 100, protocol dala: not run" in n for n in plan.notes)


def test_reproduce_split_file_refused_without_force(tmp_path):
    exp = load_experiment("modres-mias")
    df = _manifest(12, 4).drop(columns="magnification")
    plan = planning.make_plan(exp, tmp_path, out_dir=tmp_path / "out", manifest=df,
                              protocols=["modres"])
    job = plan.splits[0]
    job.path = tmp_path / "data_manifests" / "all-modres.csv"  # never the repository's own
    make_splits(plan)
    first = job.path.read_bytes()
    make_splits(plan)  # identical: reused silently
    assert job.path.read_bytes() == first
    job.rows = job.rows.iloc[4:].reset_index(drop=True)  # the data changed
    with pytest.raises(FileExistsError, match="all-modres.csv"):
        make_splits(plan)
    assert job.path.read_bytes() == first
    make_splits(plan, force=True)
    assert job.path.read_bytes() != first
