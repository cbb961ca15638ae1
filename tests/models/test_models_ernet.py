"""ERNet (paper 003): structure, ER connections at initialisation, weights, serialisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from breastcam import models
from breastcam.models.ernet import DEPTHS, STAGE_FILTERS
from breastcam.models.ernet_layers import ERWeightedSum
from breastcam.models.weights import copy_weights_by_name

SMALL = (64, 64, 3)


def _images(n=2, shape=SMALL, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _er_extra_params(depth: int) -> int:
    """What ERNet adds to a ResNet: one non-affine BN (moving mean + variance) per block output
    that a later block of its stage reads, and j-1 per-channel weight vectors in Block B j."""
    block_type, blocks = DEPTHS[depth]
    total = 0
    for filters, n in zip(STAGE_FILTERS, blocks):
        channels = 4 * filters if block_type == "bottleneck" else filters
        total += (n - 1) * 2 * channels + sum(j - 1 for j in range(2, n + 1)) * channels
    return total


# Parameter counts and layer names do not depend on the input size: built at 64 px, not 224.
@pytest.fixture(scope="module")
def ernet50():
    return models.build("ernet50", 2, input_shape=SMALL)


@pytest.fixture(scope="module")
def resnet50():
    return keras.applications.ResNet50(weights=None, classes=2, input_shape=SMALL)


def test_registry_entries():
    for depth in DEPTHS:
        s = models.spec(f"ernet{depth}")
        assert s.paper == "B"
        assert s.preprocessing == "caffe"
        assert s.input_shape == (224, 224, 3)
        assert s.cam_layer == f"conv5_block{DEPTHS[depth][1][-1]}_out"
        assert set(s.published_params) == {2} and "Table 1" in s.source
    assert models.spec("ernet50").published_params[2] == 25_560_000


def test_ernet50_parameter_count_is_resnet50_plus_er(ernet50, resnet50):
    ours, theirs = ernet50.count_params(), resnet50.count_params()
    assert ours - theirs == _er_extra_params(50) == 47_872
    assert abs(ours - theirs) / theirs < 0.01  # paper: "the same as ResNet-50"


@pytest.mark.slow
@pytest.mark.parametrize("depth", sorted(DEPTHS))
def test_every_depth_builds_with_cam_layer_and_er_connections(depth):
    model = models.build(f"ernet{depth}", 3)
    assert model.name == f"ernet{depth}"
    block_type, blocks = DEPTHS[depth]
    channels = 2048 if block_type == "bottleneck" else 512
    assert tuple(model.get_layer(models.cam_layer(model)).output.shape) == (None, 7, 7, channels)
    er_layers = [layer for layer in model.layers if isinstance(layer, ERWeightedSum)]
    assert len(er_layers) == sum(n - 1 for n in blocks)  # one per Block B
    # Block B j of a stage reads all j-1 earlier block outputs of that stage.
    last = model.get_layer(f"conv4_block{blocks[2]}_er")
    assert len(last.connection_weights) == blocks[2] - 1
    assert model.get_layer("logits").units == 3
    assert model.layers[-1].name == "probabilities"
    if depth == 101:
        resnet = keras.applications.ResNet101(weights=None, classes=3)
        assert model.count_params() - resnet.count_params() == _er_extra_params(101)


def test_er_normalisations_are_non_affine(ernet50):
    norms = [layer for layer in ernet50.layers if layer.name.endswith("_er_norm")]
    assert len(norms) == sum(n - 1 for n in DEPTHS[50][1])
    for layer in norms:
        assert isinstance(layer, keras.layers.BatchNormalization)
        assert not layer.center and not layer.scale and not layer.trainable_weights


def test_conv_and_bn_names_match_keras_resnet50(ernet50, resnet50):
    with_weights = {layer.name for layer in resnet50.layers if layer.weights and layer.name != "predictions"}
    copied = copy_weights_by_name(resnet50, ernet50)
    assert set(copied) == with_weights  # every ResNet50 conv / BN finds its ERNet twin
    np.testing.assert_array_equal(
        ernet50.get_layer("conv4_block6_3_conv").get_weights()[0],
        resnet50.get_layer("conv4_block6_3_conv").get_weights()[0],
    )


def test_imagenet_weights_come_from_keras_resnet50(monkeypatch):
    # Stand-in for the download: a seeded random ResNet50 plays the ImageNet one.
    real = keras.applications.ResNet50
    made = []

    def fake_resnet50(**kwargs):
        assert kwargs["weights"] == "imagenet" and kwargs["include_top"] is False
        keras.utils.set_random_seed(7)
        made.append(real(**{**kwargs, "weights": None}))
        return made[-1]

    monkeypatch.setattr(keras.applications, "ResNet50", fake_resnet50)
    model = models.build("ernet50", 2, input_shape=SMALL, weights="imagenet")
    for name in ("conv1_conv", "conv2_block1_0_conv", "conv5_block3_3_bn"):
        for ours, theirs in zip(model.get_layer(name).get_weights(), made[0].get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    # ER weights keep their initialisation (1 for the previous block, 0 before it).
    er = model.get_layer("conv2_block3_er").get_weights()
    np.testing.assert_array_equal(er[0], 0.0)
    np.testing.assert_array_equal(er[1], 1.0)


def test_ernet34_has_no_imagenet_weights():
    # ERNet-18's come from keras-hub's resnet_18_imagenet (tests/models/test_models_ernet_hub.py)
    with pytest.raises(ValueError, match="weights=None"):
        models.build("ernet34", 2, weights="imagenet")


def test_bad_depth_and_dropout_are_refused():
    from breastcam.models.ernet import ernet

    with pytest.raises(ValueError, match="depth"):
        ernet(20, 2)
    with pytest.raises(ValueError, match="dropout"):
        ernet(18, 2, SMALL, dropout=1.5)


def test_er_weighted_sum_starts_as_the_last_input_and_weights_per_channel():
    xs = [tf.constant(np.random.default_rng(i).normal(size=(2, 3, 3, 4)), tf.float32) for i in range(3)]
    layer = ERWeightedSum()
    np.testing.assert_allclose(layer(xs), xs[-1])
    assert [tuple(w.shape) for w in layer.trainable_weights] == [(4,)] * 3
    ws = [np.arange(4, dtype="float32") + i for i in range(3)]
    layer.set_weights(ws)
    np.testing.assert_allclose(layer(xs), sum(w * x for w, x in zip(ws, xs)), rtol=1e-6)
    one = ERWeightedSum()
    np.testing.assert_allclose(one([xs[0]]), xs[0])
    with pytest.raises(ValueError, match="same shape"):
        ERWeightedSum()([xs[0], xs[1][:, :2]])


@pytest.fixture(scope="module")
def ernet34_small():
    return models.build("ernet34", 2, input_shape=SMALL)


@pytest.mark.parametrize("training", [True, False])
def test_untrained_er_connection_is_the_normalised_previous_block(ernet34_small, training):
    # ERNet-34 stage conv3 has 4 blocks: Block B 4 reads blocks 1, 2, 3; at init it must be
    # N(x_3) exactly: the batch-normalised previous output without gamma / beta.
    model = ernet34_small
    probe = keras.Model(
        model.input,
        [
            model.get_layer("conv3_block4_er").output,
            model.get_layer("conv3_block3_er_norm").output,
            model.get_layer("conv3_block3_out").output,
        ],
    )
    norm_layer = model.get_layer("conv3_block3_er_norm")
    if not training:  # the moving statistics the call will use
        mean, var = norm_layer.moving_mean.numpy(), norm_layer.moving_variance.numpy()
    er, norm, x3 = (t.numpy() for t in probe(_images(4), training=training))
    np.testing.assert_allclose(er, norm, atol=1e-6)
    if training:  # batch statistics over batch and space, per channel
        mean, var = x3.mean(axis=(0, 1, 2)), x3.var(axis=(0, 1, 2))
    expected = (x3 - mean) / np.sqrt(var + norm_layer.epsilon)
    np.testing.assert_allclose(er, expected, rtol=1e-3, atol=1e-4)


def test_er_connections_reach_every_earlier_block(ernet34_small):
    # The zero-initialised weights of older blocks still get a gradient: the connection exists.
    model = ernet34_small
    er = model.get_layer("conv3_block4_er")
    with tf.GradientTape() as tape:
        probs = model(_images(4), training=True)
        loss = keras.losses.categorical_crossentropy(tf.one_hot([0, 1, 0, 1], 2), probs)
    grads = tape.gradient(loss, er.trainable_weights)
    assert len(grads) == 3 and all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def _perturb(model, seed=3):
    # Non-trivial ER weights and moving statistics, so a round trip that lost them would show.
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, ERWeightedSum) or layer.name.endswith("_er_norm"):
            layer.set_weights([rng.uniform(0.5, 1.5, size=w.shape).astype("float32") for w in layer.get_weights()])


@pytest.fixture(scope="module")
def ernet18_trained_looking():
    model = models.build("ernet18", 2, input_shape=SMALL, dropout=0.25)
    _perturb(model)
    return model


def test_keras_file_round_trip_safe_mode(ernet18_trained_looking, tmp_path):
    model = ernet18_trained_looking
    path = tmp_path / "ernet18.keras"
    model.save(path)
    loaded = models.load_model(path)
    assert loaded.name == "ernet18" and models.cam_layer(loaded) == "conv5_block2_out"
    x = _images()
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_weights_file_round_trip_between_builds(ernet18_trained_looking, tmp_path):
    model = ernet18_trained_looking
    path = tmp_path / "ernet18.weights.h5"
    model.save_weights(path)
    again = models.build("ernet18", 2, input_shape=SMALL, dropout=0.25, weights=str(path))
    x = _images()
    np.testing.assert_allclose(again(x, training=False), model(x, training=False), atol=1e-6)
