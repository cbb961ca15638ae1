"""Run configs: defaults, overrides, and errors that name the bad key."""

import pytest
import yaml

from breastcam.errors import ConfigError
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
    with pytest.raises(ConfigError, match="unknown key modle - did you mean model?"):
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epoch=5", "unknown key train.epoch - did you mean train.epochs?"),
        ("train.optimiser.name=sgd", "unknown key train.optimiser - did you mean train.optimizer?"),
        ("data.stain.refernce=x.json", "unknown key data.stain.refernce - did you mean data.stain.reference?"),
        ("trian.epochs=5", "unknown key trian - did you mean train?"),
        ("train.epochs.max=5", "train.epochs is not a section"),
    ],
)
def test_override_typos_name_the_closest_key(tmp_path, override, message):
    with pytest.raises(ConfigError) as info:
        load_config(_cfg(tmp_path), [override])
    assert message in str(info.value)
    assert f"--set {override}" in str(info.value)


def test_open_sections_take_any_key(tmp_path):
    cfg = load_config(_cfg(tmp_path), ["model.options.attention_stage=3", "train.optimizer.beta_1=0.6",
                                       "train.early_stopping.patience=4"])
    assert cfg["model"]["options"]["attention_stage"] == 3
    assert cfg["train"]["optimizer"]["beta_1"] == 0.6


def test_yaml_typo_at_depth_two_names_file_and_key(tmp_path):
    path = _cfg(tmp_path, train={"epochs": 2, "optimiser": {"name": "sgd"}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert str(path) in text and "did you mean train.optimizer?" in text


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.epochs=five", "train.epochs='five' is a string; expected an integer"),
        ("train.deterministic=3", "train.deterministic=3 is an integer; expected true/false"),
        ("train.optimizer.learning_rate=fast", "train.optimizer.learning_rate='fast'"),
        ("data.image_size=big", "data.image_size='big' is a string; expected an integer or a list"),
        ("train=5", "train=5 is an integer; expected a mapping"),
    ],
)
def test_wrong_types_name_key_value_and_type(tmp_path, override, words):
    with pytest.raises(ConfigError) as info:
        load_config(_cfg(tmp_path), [override])
    assert words in str(info.value)


def test_optimizer_keyword_typo_is_caught_when_the_optimizer_is_made():
    from breastcam.train.run import make_optimizer

    with pytest.raises(ConfigError, match="did you mean train.optimizer.learning_rate"):
        make_optimizer({"name": "sgd", "learnig_rate": 0.1})
    assert make_optimizer({"name": "adam", "beta_1": 0.6}).beta_1 == pytest.approx(0.6)


def test_shipped_protocols_pass_the_schema():
    from pathlib import Path

    for path in sorted(Path("experiments/protocols").glob("*.yaml")):
        assert load_config(path, ["data.manifest=split.csv"])["model"]["name"]
