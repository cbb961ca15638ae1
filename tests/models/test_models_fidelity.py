"""Issue 11: models built as the papers state them; every reproduced printed count asserted.

Counts are taken at 32 px (a convolution's parameter count does not depend on the input size).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from breastcam import models
from breastcam.models.param_check import CHECK, CHECKS, KERAS_MINUS_TORCH_RESNET50, check_row
from breastcam.models.published_counts import torch_count, torchvision_resnet, vit_count
from breastcam.report import load_experiment

SMALL = (32, 32, 3)


def _checks(model, classes, published):
    return [c for c in CHECKS if (c.model, c.classes, c.published) == (model, classes, published)]


@pytest.mark.parametrize(
    "classes, reduction, published",
    [(2, 4, 25_611_842), (3, 16, 24_040_643), (4, 16, 24_042_692)],
)
def test_dalaresnet50_counts_reproduce_the_papers_with_the_reduction_each_implies(classes, reduction, published):
    model = models.build("dalaresnet50", classes, input_shape=SMALL, reduction=reduction)
    assert model.count_params() == published + KERAS_MINUS_TORCH_RESNET50
    # and the table `breastcam models` prints says so
    (check,) = _checks("dalaresnet50", classes, published)
    row = check_row(check)
    assert row["match"] == CHECK and row["ours"] - row["offset"] == published


def test_dalaresnet50_two_class_count_does_not_fit_r16():
    # the old configuration (r = 16 for BreakHis) misses the printed 2-class count
    model = models.build("dalaresnet50", 2, input_shape=SMALL, reduction=16)
    assert model.count_params() - KERAS_MINUS_TORCH_RESNET50 != 25_611_842


def test_resnet50_printed_count_is_torchvision_resnet34_with_its_imagenet_fc():
    assert torch_count(torchvision_resnet(34, include_top=True, classes=1000, input_shape=SMALL)) == 21_797_672
    # the other depths give torchvision's published totals (the counting graph is right)
    assert torch_count(torchvision_resnet(50, include_top=True, classes=1000, input_shape=SMALL)) == 25_557_032
    assert torch_count(torchvision_resnet(18, include_top=True, classes=1000, input_shape=SMALL)) == 11_689_512


def test_vit_printed_counts_fit_a_1024_wide_4_block_vit():
    kw = dict(width=1024, depth=4, mlp=4096, patch=16, cls_token=False, final_norm=False)
    assert vit_count(classes=2, **kw) == 51_375_106
    assert vit_count(classes=3, **kw) == 51_376_131
    # ViT-B/16 itself (timm layout, class token, final LN) does not give it
    assert vit_count(width=768, depth=12, mlp=3072, patch=16, classes=2) != 51_375_106


@pytest.mark.slow
def test_vit_1024x4_built_with_keras_hub_layers_counts_as_printed():
    (check,) = _checks("vit_b16", 2, 51_375_106)
    assert check_row(check)["match"] == CHECK


def test_every_unreproduced_printed_count_says_what_was_tried():
    for check in CHECKS:
        if check.published is not None and check.count is None:
            assert check.configuration.startswith("not reproduced:"), check


def test_dala_experiments_build_the_reduction_their_count_implies_and_baseline_dropout():
    for name, r in (("dala-breakhis", 4), ("dala-placement", 4), ("dala-cam", 4), ("dala-bach", 16), ("dala-miniddsm", 16)):
        exp = load_experiment(name)
        for spec in exp["model_specs"].values():
            if spec["model"] == "dalaresnet50":
                assert spec["options"]["reduction"] == r, name
    # paper 000 section IV-C: the benchmark models "apply the above settings" (dropout 0.25)
    for name in ("dala-breakhis", "dala-bach", "dala-miniddsm"):
        specs = load_experiment(name)["model_specs"]
        for model, spec in specs.items():
            assert spec["options"].get("dropout") == 0.25, (name, model)


def test_dala_cam_layer_is_the_models_cam_layer():
    for name in ("dala-cam", "dala-cam-mias"):
        exp = load_experiment(name)
        model = models.build("dalaresnet50", 2, input_shape=SMALL, **exp["model_specs"]["dalaresnet50"]["options"])
        assert exp["explain"]["layer"] == models.cam_layer(model) == "dala_attention_out"
        assert exp["explain"]["params"]["dtgradcam"]["average"] == "raw"  # paper 001 eq. 8


def test_frozen10_trains_batchnorm_layers_as_paper_c_algorithm_1():
    model = models.build("resnet50_frozen10", 2, input_shape=(64, 64, 3))
    bn = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bn) == 53 and all(layer.trainable for layer in bn)  # include_batchnorm=True
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    trainable_convs = [layer.name for layer in convs if layer.trainable]
    assert trainable_convs == ["conv5_block3_1_conv", "conv5_block3_2_conv", "conv5_block3_3_conv"]
    # gamma + beta of every BN, the last 3 convs (with bias), the head
    bn_params = sum(2 * int(layer.gamma.shape[0]) for layer in bn)
    last3 = sum(layer.count_params() for layer in model.layers if layer.name in trainable_convs)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == bn_params + last3 + (2048 * 2 + 2)
    old = models.build("resnet50_frozen10", 2, input_shape=(64, 64, 3), train_batchnorm=False)
    assert sum(int(np.prod(w.shape)) for w in old.trainable_weights) < trainable


def test_ernet_paper_literal_er_connection_is_a_named_option():
    weighted = models.build("ernet18", 2, input_shape=SMALL)
    paper = models.build("ernet18", 2, input_shape=SMALL, er_connection="paper")
    names = {layer.name for layer in paper.layers}
    # 1x1 + two 3x3 convolutions on the ER path of every Block B (eq. 10, section 3.2)
    for part, kernel in (("a", 1), ("b", 3), ("c", 3)):
        assert paper.get_layer(f"conv2_block2_er_path_{part}_conv").kernel.shape[0] == kernel
    assert "conv2_block2_er_in" in names and "conv2_block2_add" not in names  # ER terms inside h_l
    assert paper.count_params() > weighted.count_params()
    out = paper(np.zeros((1, *SMALL), np.float32))
    assert out.shape == (1, 2)
    with pytest.raises(ValueError, match="er_connection"):
        models.build("ernet18", 2, input_shape=SMALL, er_connection="dense")


def test_seresnet50_counts_reproduce_with_the_keras_offset():
    for check in (c for c in CHECKS if c.model == "seresnet50"):
        assert check.offset == KERAS_MINUS_TORCH_RESNET50
        assert check_row(check)["match"] == CHECK, check.classes


@pytest.mark.slow
@pytest.mark.parametrize("model", ["swin", "dinov2_b14"])
def test_swin_and_dinov2_counts_as_printed_or_say_why_not(model):
    rows = [check_row(c) for c in CHECKS if c.model == model]
    assert [r["classes"] for r in rows] == [2, 3, 4]
    for row in rows:
        assert row["match"] == CHECK or row["configuration"].startswith("not reproduced:"), row
    if model == "swin":  # exact for 2 and 3 classes; BACH's printed figure carries the +8,196 of other rows
        assert [r["match"] for r in rows] == [CHECK, CHECK, "✗"] and rows[0]["offset"] is None
