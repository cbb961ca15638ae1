"""The CNN zoo of papers A and C: every model builds, predicts, reloads; exact parameter counts.

Each model is built once per session (64 px, weights=None) and shared by the tests.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from breastcam import models
from breastcam.errors import ConfigError
from breastcam.models.dala import ATTENTION_OUT
from breastcam.models.heads import logits_model
from breastcam.models.resnet import build_hand_resnet50
from breastcam.models.weights import copy_weights_by_name

ZOO = [
    "dalaresnet50",
    "resnet50",
    "resnet50_frozen10",
    "seresnet50",
    "vgg16",
    "vgg16_inception",
    "vgg19",
    "densenet121",
    "mobilenetv2",
    "efficientnetb7",
]
SLOW = {"efficientnetb7", "densenet121"}  # hundreds of layers: tens of seconds each
# The developer loop (-m "not slow") keeps one model per family of papers A and C (DALAResNet50,
# ResNet50-frozen10, the VGG16-Inception hybrid); the other ResNet50/VGG-sized ones run in CI.
SLOW |= {"resnet50", "seresnet50", "vgg16", "vgg19", "mobilenetv2"}
SIZE = (64, 64, 3)
CLASSES = {"dalaresnet50": 3}  # the paper prints DALAResNet50's count for 3 classes
KERAS_MINUS_TORCH = 79_680  # ResNet50: conv biases (26,560) + BN moving stats (53,120)

_built: dict[str, keras.Model] = {}


def _model(name: str) -> keras.Model:
    if name not in _built:
        _built[name] = models.build(name, CLASSES.get(name, 2), input_shape=SIZE)
    return _built[name]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, size=(2, *SIZE)).astype("float32")


@pytest.fixture(scope="module", autouse=True)
def _free_models():
    yield
    _built.clear()
    keras.backend.clear_session()


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in ZOO]
)
def test_models_zoo_builds_predicts_and_reloads(name, images, tmp_path):
    model = _model(name)
    assert model.name == name
    assert [layer.name for layer in model.layers[-2:]] == ["logits", "probabilities"]
    # flat graph: the CAM layer is the model's own layer, with a spatial map
    cam = models.cam_layer(model)
    assert len(model.get_layer(cam).output.shape) == 4

    x = images / 127.5 - 1.0
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, CLASSES.get(name, 2))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    logits = np.asarray(logits_model(model)(x, training=False))
    np.testing.assert_allclose(probs, keras.ops.convert_to_numpy(keras.ops.softmax(logits)), rtol=1e-4, atol=1e-6)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = models.load_model(path)
    assert reloaded.name == name and models.cam_layer(reloaded) == cam
    np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)), probs)


def test_models_zoo_dalaresnet50_counts_match_paper():
    model = _model("dalaresnet50")
    published = models.spec("dalaresnet50").published_params
    attention = sum(model.get_layer(f"dala_attention_{part}").count_params() for part in ("reduce", "expand"))
    assert attention == 526_464
    assert model.count_params() == published[3] + KERAS_MINUS_TORCH
    four = models.build("dalaresnet50", 4, input_shape=(32, 32, 3))
    assert four.count_params() == published[4] + KERAS_MINUS_TORCH
    assert models.cam_layer(four) == ATTENTION_OUT
    assert four.get_layer("head_dropout").rate == 0.25


def test_models_zoo_dalaresnet50_attention_stage_option():
    model = models.build("dalaresnet50", 2, input_shape=(32, 32, 3), attention_stage=1, gate="sigmoid")
    names = [layer.name for layer in model.layers]
    # inserted right after stage 1, feeding stage 2
    assert names.index("dala_attention_stage1_out") < names.index("conv3_block1_1_conv")
    assert model.get_layer("conv3_block1_1_conv").input is model.get_layer("dala_attention_stage1_out").output
    assert model.get_layer("dala_attention_stage1_reduce").count_params() + model.get_layer(
        "dala_attention_stage1_expand"
    ).count_params() == 2 * 256 * 16 + 16 + 256
    assert models.cam_layer(model) == "conv5_block3_out"
    with pytest.raises(ValueError, match="attention_stage"):
        models.build("dalaresnet50", 2, attention_stage=5)


def test_models_zoo_seresnet50_count_matches_paper():
    published = models.spec("seresnet50").published_params[2]
    assert _model("seresnet50").count_params() == published + KERAS_MINUS_TORCH


@pytest.mark.slow
def test_models_zoo_vgg16_count_matches_paper():
    # the full VGG16 head depends on the input size: only 224 px gives the paper's figure
    assert models.build("vgg16", 2).count_params() == 134_268_738


def test_models_zoo_frozen10_trains_last_ten_layers_and_head():
    # train_batchnorm=False: only the last 10 (the paper's BN-trainable default: test_models_fidelity)
    model = models.build("resnet50_frozen10", 2, input_shape=SIZE, train_batchnorm=False)
    trainable = [layer.name for layer in model.layers if layer.trainable and not isinstance(layer, keras.layers.InputLayer)]
    backbone_last10 = [
        "conv5_block3_1_conv", "conv5_block3_1_bn", "conv5_block3_1_relu", "conv5_block3_2_conv",
        "conv5_block3_2_bn", "conv5_block3_2_relu", "conv5_block3_3_conv", "conv5_block3_3_bn",
        "conv5_block3_add", "conv5_block3_out",
    ]
    assert trainable == backbone_last10 + ["avg_pool", "logits", "probabilities"]
    # 3 convs + 3 BN (gamma, beta) of conv5_block3 + Dense(2048 -> 2)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 4_465_664 + 4_098
    assert models.spec("resnet50_frozen10").input_shape == (112, 112, 3)


def test_models_zoo_hand_built_resnet50_equals_keras_application(images):
    # the hand-built graph (DALA, SE-ResNet, ERNet) must be Keras' ResNet50 layer for layer
    app = _model("resnet50")
    mine = build_hand_resnet50(SIZE)
    assert mine.count_params() == 23_587_712
    ref = keras.Model(app.input, app.get_layer("conv5_block3_out").output)
    assert [layer.name for layer in mine.layers[1:]] == [layer.name for layer in ref.layers[1:]]
    copied = copy_weights_by_name(ref, mine)
    assert len(copied) == 106  # 53 convolutions + 53 BatchNorms
    x = images / 127.5 - 1.0
    np.testing.assert_allclose(mine(x), ref(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "name", ["dalaresnet50"] + [pytest.param(n, marks=pytest.mark.slow) for n in ("resnet50", "vgg16")]
)
def test_models_zoo_weights_file_round_trip(name, images, tmp_path):
    model = _model(name)
    path = tmp_path / f"{name}.weights.h5"
    model.save_weights(path)
    again = models.build(name, CLASSES.get(name, 2), input_shape=SIZE, weights=str(path))
    x = images / 127.5 - 1.0
    np.testing.assert_array_equal(np.asarray(again(x, training=False)), np.asarray(model(x, training=False)))


def test_models_zoo_legacy_h5_loads_by_name(tmp_path):
    # Keras' cached ImageNet file (a legacy .h5 of the application without top) given as a path
    from keras.src.legacy.saving import legacy_h5_format
    import h5py

    app = _model("resnet50")
    backbone = keras.Model(app.input, app.get_layer("conv5_block3_out").output, name="resnet50")
    path = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)
    dala = models.build("dalaresnet50", 2, input_shape=(32, 32, 3), weights=str(path))
    for layer in ("conv1_conv", "conv4_block2_2_bn", "conv5_block3_3_conv"):
        for a, b in zip(dala.get_layer(layer).get_weights(), app.get_layer(layer).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_models_zoo_efficientnet_scaling_option():
    # the registry's small configuration: B0's blocks (tests/test_every_model.py builds it and
    # checks its CAM layer); an unknown member fails before any build
    shape, options = models.spec("efficientnetb7").small_config()
    assert options == {"scaling": "b0"}
    with pytest.raises(ConfigError, match="scaling='b9'"):
        models.build("efficientnetb7", 2, (32, 32, 3), scaling="b9")
