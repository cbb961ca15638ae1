"""Experiment definitions (experiments/<paper>/*.yaml) load, point at real files and name real models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from breastcam.report.experiment_spec import (
    list_experiments,
    load_experiment,
    published_for,
    resolve_train,
    validate_experiment,
)
from breastcam.report.published import experiments_dir

# The registry names the issue fixes (breastcam.models.names() once every family is in).
MODEL_NAMES = {
    "resnet50", "dalaresnet50", "seresnet50", "densenet121", "vgg16", "vgg16_inception", "vit_b16",
    "swin", "dinov2_b14", "ernet18", "ernet34", "ernet50", "ernet101", "resnet50_frozen10", "vgg19",
    "mobilenetv2", "efficientnetb7",
}
EXPECTED = {
    "dala-breakhis", "dala-bach", "dala-miniddsm", "dala-placement", "dala-params", "dala-cam", "dala-cam-mias",
    "dala-curves", "dala-data", "ernet-breakhis", "ernet-breakhis-official", "ernet-depth", "modres-cddcesm",
    "modres-cddcesm-abnormal",
    "modres-mias",
}
EXPERIMENTS = list_experiments()
NAMES = [name for name, _, _ in EXPERIMENTS]


def test_every_experiment_is_listed_once_and_run_configs_are_not():
    assert set(NAMES) == EXPECTED
    assert len(NAMES) == len(set(NAMES))
    assert not any("/protocols/" in path for _, _, path in EXPERIMENTS)
    assert all(title for _, title, _ in EXPERIMENTS)


@pytest.mark.parametrize("name", NAMES)
def test_experiment_loads_and_its_files_and_models_exist(name):
    exp = load_experiment(name)
    assert exp["name"] == name
    assert Path(exp["path"]).parent.parent == experiments_dir()
    assert name.split("-")[0] == Path(exp["path"]).parent.name  # dala-* lives in experiments/dala/
    for rel in exp["published"]:
        assert (experiments_dir() / rel).is_file(), rel
    registry = {spec["model"] for spec in exp["model_specs"].values()}
    assert registry <= MODEL_NAMES, registry - MODEL_NAMES
    assert set(exp["quick"].get("models", [])) <= set(exp["models"])
    # the same experiment loads from its path, also relative to experiments/
    assert load_experiment(exp["path"])["model_specs"] == exp["model_specs"]
    relative = Path(exp["path"]).relative_to(experiments_dir())
    assert load_experiment(relative)["name"] == name


@pytest.mark.parametrize("name", NAMES)
def test_every_published_number_is_one_the_experiment_computes(name):
    exp = load_experiment(name)
    pub = published_for(exp)
    if name in ("dala-curves", "modres-cddcesm-abnormal"):
        assert pub.empty  # the figures print no numbers; the extension is not the paper's task
        return
    assert not pub.empty
    assert set(pub["metric"]) <= set(exp["evaluate"]["metrics"]), set(pub["metric"]) - set(exp["evaluate"]["metrics"])
    assert set(pub["dataset"]) <= set(exp["published_datasets"])
    models = set(pub["model"]) - {""}
    models = {m for m in models if not m.startswith("ref")}  # other studies' results (paper 004 Table 3)
    known = set(exp["models"]) | set(exp["explain"].get("methods", []))
    assert models <= known, models - known


def test_paper_protocols_follow_the_spec():
    a = load_experiment("dala-breakhis")
    assert a["train"]["image_size"] == 224 and a["train"]["batch_size"] == 32
    assert a["train"]["epochs"] == 50 and a["train"]["optimizer"]["learning_rate"] == 1e-4
    assert a["model_specs"]["dalaresnet50"]["options"]["dropout"] == 0.25
    assert a["protocols"] == ["dala", "patient"] and len(a["models"]) == 9
    b = load_experiment("ernet-breakhis")
    assert b["train"]["optimizer"] == {"name": "adam", "learning_rate": 1e-4, "beta_1": 0.6, "beta_2": 0.8}
    assert b["train"]["batch_size"] == 16 and b["train"]["epochs"] == 100
    assert b["train"]["stain"]["method"] == "macenko" and b["train"]["folds"] == [0, 1, 2, 3, 4]
    c = load_experiment("modres-cddcesm")
    assert c["train"]["image_size"] == 112 and c["train"]["epochs"] == 10
    assert c["models"][0] == "resnet50_frozen10" and len(c["models"]) == 6


def test_placement_variants_merge_shared_and_own_options():
    exp = load_experiment("dala-placement")
    assert exp["models"] == [f"dalaresnet50_stage{i}" for i in (1, 2, 3, 4)]
    spec = exp["model_specs"]["dalaresnet50_stage2"]
    assert spec == {"model": "dalaresnet50",
                    "options": {"gate": "relu", "reduction": 4, "dropout": 0.25, "attention_stage": 2}}


def test_resolve_train_picks_per_model_values_and_quick_overrides():
    exp = load_experiment("modres-cddcesm")
    assert resolve_train(exp, "resnet50_frozen10")["preprocessing"] == "caffe"
    assert resolve_train(exp, "efficientnetb7")["preprocessing"] == "none"
    quick = resolve_train(exp, "vgg16", quick=True)
    assert quick["epochs"] == 1 and quick["image_size"] == 64 and quick["weights"] is None
    assert "models" not in quick and "max_images" not in quick
    depth = load_experiment("ernet-depth")
    assert resolve_train(depth, "ernet34")["weights"] is None
    assert resolve_train(depth, "ernet18")["weights"] == "imagenet"  # keras-hub's ResNet-18
    assert resolve_train(depth, "ernet18")["preprocessing"] == "torch"
    assert resolve_train(depth, "ernet101")["weights"] == "imagenet"
    with pytest.raises(ValueError, match="not a model"):
        resolve_train(exp, "ernet50")


def _raw(name):
    return yaml.safe_load(Path(load_experiment(name)["path"]).read_text())


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda r: r.pop("dataset"), "dataset: required key"),
        (lambda r: r.update(paper="D"), "paper: must be one of"),
        (lambda r: r.update(protocols=["patient"]), "protocols: the first entry"),
        (lambda r: r.update(protocols=["dala", "leaky"]), "protocols: unknown"),
        (lambda r: r.update(subsets={"by": "magnification"}), "subsets: must be"),
        (lambda r: r.update(models=[{"model": "resnet50"}]), r"models\[0\]"),
        (lambda r: r.update(evaluate={}), "evaluate.metrics"),
        (lambda r: r.update(quick={"models": ["vgg19"]}), "quick.models"),
        (lambda r: r.update(colour="blue"), "unknown key colour"),
        (lambda r: r.update(qiuck={}), "unknown key qiuck - did you mean quick?"),
        (lambda r: r["train"].update(epoch=3), "unknown key train.epoch - did you mean train.epochs?"),
        (lambda r: r["train"].update(optimiser={"name": "sgd"}),
         "unknown key train.optimiser - did you mean train.optimizer?"),
        (lambda r: r["quick"].update(max_image=3), "did you mean quick.max_images?"),
        (lambda r: r["train"].update(epochs="50"), "train.epochs='50' is a string; expected an integer"),
        (lambda r: r["train"].update(weights={"default": "imagenet", "vgg16": 3}),
         r"train.weights.vgg16=3 is an integer; expected null or a string"),
        (lambda r: r["train"]["stain"].update(metod="macenko") if "stain" in r["train"]
         else r["train"].update(stain={"metod": "macenko"}), "did you mean train.stain.method?"),
    ],
)
def test_bad_experiments_fail_naming_the_file_and_key(tmp_path, change, match):
    raw = _raw("dala-breakhis")
    change(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=match) as err:
        load_experiment(path)
    assert str(path) in str(err.value)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="dala-breakhis"):
        load_experiment("dala-nothing")
    with pytest.raises(FileNotFoundError):
        load_experiment("/nonexistent/experiment.yaml")


def test_validate_accepts_a_minimal_mapping():
    exp = validate_experiment({
        "name": "x", "paper": "A", "title": "t", "published": [], "dataset": "folder",
        "protocols": ["dala"], "models": ["resnet50"], "train": {}, "evaluate": {"metrics": []},
    })
    assert exp["published_datasets"] == ["folder"] and exp["subsets"] is None
    assert exp["model_specs"] == {"resnet50": {"model": "resnet50", "options": {}}}

