"""ViT-B/16, Swin-B and DINOv2 ViT-B/14 (paper A baselines) on keras-hub backbones."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from breastcam import models
from breastcam.models.transformers import PRESETS, PresetUnavailableError, TokensToGrid
from breastcam.models.weights import WeightsUnavailableError

NAMES = ["vit_b16", "swin", "dinov2_b14"]

# Small configurations with the same structure (CLS token, shifted windows + merging, ...).
SMALL = {
    "vit_b16": dict(input_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32),
    "swin": dict(input_shape=(32, 32, 3), embed_dim=8, depths=(2, 1), num_heads=(1, 2), window_size=4),
    "dinov2_b14": dict(
        input_shape=(28, 28, 3), patch_size=7, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32
    ),
}
SMALL_GRID = {"vit_b16": (4, 4, 16), "swin": (4, 4, 16), "dinov2_b14": (4, 4, 16)}


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, *shape)).astype("float32")


def _small(name, num_classes=3, **extra):
    options = dict(SMALL[name])
    shape = options.pop("input_shape")
    return models.build(name, num_classes, input_shape=shape, **options, **extra), shape


def test_registry_entries():
    for name in NAMES:
        s = models.spec(name)
        assert s.paper == "A" and s.cam_layer == "token_grid" and s.input_shape == (224, 224, 3)
        assert set(s.published_params) == {2, 3, 4}
    assert models.spec("vit_b16").preprocessing == "minus_one_one"
    assert models.spec("swin").preprocessing == "torch"
    assert models.spec("dinov2_b14").preprocessing == "torch"


@pytest.mark.slow
def test_vit_b16_paper_configuration_224():
    model = models.build("vit_b16", 2)
    # keras-hub's vit_base_patch16_224_imagenet backbone has 85,798,656 parameters.
    assert model.count_params() == 85_798_656 + 768 * 2 + 2
    assert tuple(model.get_layer("token_grid").output.shape) == (None, 14, 14, 768)
    assert tuple(model.output.shape) == (None, 2)  # build only: the small models run forward passes


@pytest.mark.slow
def test_dinov2_b14_paper_configuration_224_matches_published_count():
    model = models.build("dinov2_b14", 2)
    assert tuple(model.get_layer("token_grid").output.shape) == (None, 16, 16, 768)
    # The paper counts the 518-px (37x37+1) position embeddings, not keras-hub's derived 224-px
    # copy (16x16+1 tokens): then keras-hub's DINOv2-B/14 + Dense(2) is the paper's number.
    derived = (16 * 16 + 1) * 768
    assert model.count_params() - derived == models.spec("dinov2_b14").published_params[2]
    assert tuple(model.output.shape) == (None, 2)  # build only: the small models run forward passes


@pytest.mark.slow
def test_swin_base_paper_configuration_224_matches_published_count():
    # Build only: keras-hub traces Swin-B's 24 blocks symbolically (~15 s on two cores) and a
    # 224 forward pass costs as much again.
    model = models.build("swin", 2)
    published = models.spec("swin").published_params
    assert model.count_params() == published[2]
    assert published[3] - published[2] == 1024 + 1  # one more 1024-wide logit: the same head
    assert tuple(model.get_layer("token_grid").output.shape) == (None, 7, 7, 1024)


@pytest.mark.parametrize("name", NAMES)
def test_small_model_round_trip_safe_mode_and_cam_gradient(name, tmp_path):
    model, shape = _small(name, dropout=0.1)
    assert model.name == name
    grid = model.get_layer(models.cam_layer(model)).output
    assert tuple(grid.shape) == (None, *SMALL_GRID[name])
    x = _images(shape)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = models.load_model(path)
    assert loaded.name == name
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)

    # The head pools the patch tokens, so the logits depend on the CAM grid (Grad-CAM works).
    probe = keras.Model(model.input, [grid, model.get_layer("logits").output])
    with tf.GradientTape() as tape:
        acts, logits = probe(x, training=False)
        score = logits[:, 0]
    grads = tape.gradient(score, acts)
    assert float(tf.reduce_max(tf.abs(grads))) > 0


def test_tokens_to_grid_drops_prefix_and_keeps_row_major_order():
    tokens = np.arange(2 * (1 + 6) * 3, dtype="float32").reshape(2, 7, 3)
    layer = TokensToGrid((2, 3), num_prefix_tokens=1)
    grid = layer(tokens).numpy()
    assert grid.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(grid[:, 1, 0], tokens[:, 1 + 3])  # row 1, column 0 = patch 3
    again = TokensToGrid.from_config(layer.get_config())
    assert again.grid_size == (2, 3) and again.num_prefix_tokens == 1
    with pytest.raises(ValueError, match="expected 1 prefix"):
        TokensToGrid((3, 3), num_prefix_tokens=1)(tokens)
    with pytest.raises(ValueError, match="grid_size"):
        TokensToGrid((0, 3))


def test_weights_file_round_trip_between_builds(tmp_path):
    model, shape = _small("vit_b16")
    path = tmp_path / "vit.weights.h5"
    model.save_weights(path)
    options = dict(SMALL["vit_b16"])
    options.pop("input_shape")
    again = models.build("vit_b16", 3, input_shape=shape, weights=str(path), **options)
    x = _images(shape)
    np.testing.assert_allclose(again(x, training=False), model(x, training=False), atol=1e-6)


def test_local_preset_directory_initialises_the_backbone(tmp_path):
    model, shape = _small("dinov2_b14")
    backbone = model.get_layer("dinov2_b14_backbone")
    backbone.save_to_preset(str(tmp_path / "preset"))
    again = models.build("dinov2_b14", 2, input_shape=shape, weights=str(tmp_path / "preset"))
    x = _images(shape)
    ours = keras.Model(again.input, again.get_layer("token_grid").output)(x)
    theirs = keras.Model(model.input, model.get_layer("token_grid").output)(x)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_imagenet_offline_names_the_ways_forward(monkeypatch):
    calls = []

    def offline(preset, **kwargs):
        calls.append((preset, kwargs))
        raise ConnectionError("Failed to resolve 'api.kaggle.com'")

    # Never touch the network in tests: the preset loader is replaced by an offline one.
    monkeypatch.setattr(keras_hub.models.ViTBackbone, "from_preset", offline)
    with pytest.raises(WeightsUnavailableError, match="weights=None") as info:
        models.build("vit_b16", 2, weights="imagenet")
    assert isinstance(info.value, PresetUnavailableError)
    assert "preset directory" in str(info.value) and "api.kaggle.com" in str(info.value)
    assert calls == [(PRESETS["vit_b16"], {"image_shape": (224, 224, 3)})]


def test_bad_options_and_weights_are_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot be combined"):
        models.build("vit_b16", 2, weights="imagenet", num_layers=2)
    with pytest.raises(ValueError, match="no such file or directory"):
        models.build("swin", 2, weights=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="unknown option"):
        models.build("vit_b16", 2, input_shape=(32, 32, 3), patch_size=8, num_layers=1, not_an_option=1)


def _embedding(model):
    from keras_hub.src.models.dinov2.dinov2_layers import DINOV2Embedding

    backbone = next(layer for layer in model.layers if isinstance(layer, keras_hub.models.DINOV2Backbone))
    return next(layer for layer in backbone._flatten_layers() if isinstance(layer, DINOV2Embedding))


def test_dinov2_trained_position_embeddings_reload_exactly(tmp_path):
    """keras-hub alone resamples a trained interpolated table twice on save/load (5e-3 off after
    one step); breastcam.models.dinov2_save restores it as saved."""
    model, shape = _small("dinov2_b14")
    table = _embedding(model).interpolated_position_embeddings
    assert tuple(table.shape) != tuple(_embedding(model).position_embeddings.shape)  # the lossy case
    table.assign(np.random.default_rng(1).normal(0, 1, table.shape).astype("float32"))  # "trained"
    x = _images(shape)
    model.save(tmp_path / "d.keras")
    loaded = models.load_model(tmp_path / "d.keras")
    np.testing.assert_allclose(_embedding(loaded).interpolated_position_embeddings.numpy(), table.numpy(), atol=0)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)
