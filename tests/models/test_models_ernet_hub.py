"""ERNet-18 from keras-hub's ImageNet ResNet-18: the real loading path (``from_preset``), tested
offline with a preset saved locally from a seeded random backbone of the same configuration."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from breastcam.errors import ConfigError
from breastcam.models import build
from breastcam.models.hub_resnet import ernet_name


def _resnet18(shape):
    import keras_hub

    keras.utils.set_random_seed(1)
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=shape)


def test_names_map_to_keras_application_names():
    assert ernet_name("stack0_block1_2_conv") == "conv2_block2_2_conv"
    assert ernet_name("stack3_block0_0_bn") == "conv5_block1_0_bn"
    assert ernet_name("conv1_conv") == "conv1_conv"
    assert ernet_name("pool1_pool") is None


def test_ernet18_takes_a_local_keras_hub_preset(tmp_path):
    hub = _resnet18((64, 64, 3))
    hub.save_to_preset(str(tmp_path / "preset"))
    model = build("ernet18", 2, (64, 64, 3), weights=str(tmp_path / "preset"))
    layers = {layer.name: layer for layer in model.layers}
    for layer in hub.layers:
        name = ernet_name(layer.name)
        if name is None or not layer.weights:
            continue
        theirs, ours = layer.get_weights(), layers[name].get_weights()
        np.testing.assert_array_equal(ours[0], theirs[0], err_msg=name)
        if isinstance(layers[name], keras.layers.Conv2D):
            assert not np.any(ours[1]), name  # timm's convolutions have no bias
    kernel, bias = layers["conv2_block1_0_conv"].get_weights()  # identity where ResNet-18 has none
    np.testing.assert_array_equal(kernel[0, 0], np.eye(64))
    assert not np.any(bias)
    # The stem computes what ResNet-18's stem computes.
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    ours = keras.Model(model.inputs, layers["pool1_pool"].output)(x)
    theirs = keras.Model(hub.inputs, hub.get_layer("pool1_pool").output)(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-4)


def test_ernet34_still_has_no_imagenet_weights():
    with pytest.raises(ConfigError, match="ERNet-34 has no ImageNet weights"):
        build("ernet34", 2, (64, 64, 3), weights="imagenet")
