"""Run configs: defaults, overrides, and errors that name the bad key."""

import pytest
import yaml

from breastcam.train.config import apply_overrides, load_config
from breastcam.train.repeat import repeat_configs


def _cfg(tmp_path, **extra):
    cfg = {"data": {"manifest": str(tmp_path / "split.csv")}, "model": {"name": "resnet50"}}
    cfg.update(extra)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_defaults_and_overrides(tmp_path):
    cfg = load_config(_cfg(tmp_path), ["train.epochs=3", "model.options.attention_stage=2", "data.image_size=64"])
    assert cfg["train"]["epochs"] == 3
    assert cfg["train"]["batch_size"] == 32  # default kept
    assert cfg["model"]["options"] == {"attention_stage": 2}
    assert cfg["data"]["image_size"] == [64, 64]
    assert cfg["train"]["optimizer"] == {"name": "adam", "learning_rate": 1.0e-4}


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.loss=hinge", "train.loss"),
        ("train.epochs=0", "train.epochs"),
        ("train.optimizer.name=lion", "train.optimizer.name"),
        ("data.on_bad_image=ignore", "data.on_bad_image"),
    ],
)
def test_bad_values_name_the_key(tmp_path, override, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        load_config(_cfg(tmp_path), [override])


def test_missing_manifest_and_unknown_section(tmp_path):
    with pytest.raises(ValueError, match="data.manifest"):
        load_config({"model": {"name": "resnet50"}})
    with pytest.raises(ValueError, match="unknown config section"):
        load_config({"data": {"manifest": "x.csv"}, "modle": {}})
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides({}, ["epochs"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_repeat_configs_give_one_dir_per_fold_and_seed(tmp_path):
    cfgs = repeat_configs(_cfg(tmp_path, output_dir=str(tmp_path / "runs")), folds=[0, 1], seeds=[3, 4])
    dirs = [c["output_dir"] for c in cfgs]
    assert len(set(dirs)) == 4
    assert {(c["data"]["fold"], c["seed"]) for c in cfgs} == {(0, 3), (0, 4), (1, 3), (1, 4)}
    assert all(d.startswith(str(tmp_path / "runs")) for d in dirs)
