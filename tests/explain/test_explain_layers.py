"""``--layer auto`` on models breastcam did not build: nested backbones (``outer/inner`` names),
keras-hub token sequences laid out as their patch grid (class and register tokens dropped), a
layer the class score does not depend on skipped, and one clear message when nothing is spatial."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest

from breastcam.errors import ConfigError
from breastcam.explain import get_cam
from breastcam.explain.layers import token_grid


def _x(size=32, n=2):
    return np.random.default_rng(0).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def _head(features, name="probabilities"):
    return keras.layers.Dense(2, activation="softmax", name=name)(features)


@pytest.mark.parametrize("tokens, hw, expected", [
    (17, (32, 32), (4, 4, 1)),  # ViT: class token + 4 x 4 patches
    (21, (28, 28), (4, 4, 5)),  # DINOv2 with 4 register tokens: 1 + 4 + 16
    (16, (32, 32), (4, 4, 0)),  # Swin: patches only
    (13, (48, 64), (3, 4, 1)),  # a 3 x 4 grid for a 48 x 64 input
    (7, (32, 32), None),  # no square grid after at most 16 prefix tokens... 7 - 3 = 4 is 2 x 2
])
def test_token_grid_drops_the_fewest_prefix_tokens(tokens, hw, expected):
    if expected is None:
        assert token_grid(tokens, hw) == (2, 2, 3)
    else:
        assert token_grid(tokens, hw) == expected


def test_a_nested_keras_applications_backbone_is_searched_inside():
    base = keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=None)
    model = keras.Sequential([keras.Input((64, 64, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    cam = get_cam("gradcam", model)
    assert cam.layer == f"{base.name}/out_relu"
    maps = cam(_x(64))
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all() and maps.max() == pytest.approx(1.0)
    # an explicit inner layer by its outer/inner name
    assert get_cam("gradcam", model, f"{base.name}/block_13_expand_relu")(_x(64)).shape == (2, 64, 64)
    with pytest.raises(ConfigError, match="outer/inner"):
        get_cam("gradcam", model, "block_13_expand_relu")


def test_a_keras_hub_vit_backbones_tokens_are_laid_out_as_their_grid():
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=2,
                                            hidden_dim=16, mlp_dim=32)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, _head(keras.layers.GlobalAveragePooling1D()(backbone(inputs))))
    cam = get_cam("gradcam", model)
    assert cam.layer.startswith(backbone.name + "/")
    acts, _ = cam.forward(_x())
    assert tuple(acts.shape) == (2, 4, 4, 16)  # 17 tokens: the class token dropped
    maps = cam(_x())
    assert maps.shape == (2, 32, 32) and np.isfinite(maps).all()
    # the grid is the image's: a change to the pixels of patch (row 1, column 2) moves only grid
    # cell (1, 2) of the patch embeddings (no attention has mixed the tokens yet)
    embed = get_cam("gradcam", model, f"{backbone.name}/vit_patching_and_embedding")
    x = _x()
    moved = x.copy()
    moved[:, 8:16, 16:24, :] += 0.5
    change = np.abs(np.asarray(embed.forward(moved)[0]) - np.asarray(embed.forward(x)[0])).max(axis=-1)
    assert change.shape == (2, 4, 4)
    assert (change[:, 1, 2] > 1e-3).all()
    change[:, 1, 2] = 0.0
    assert change.max() < 1e-6


def test_a_head_on_the_class_token_alone_moves_the_search_to_a_layer_it_depends_on():
    """Only the class token feeds the head: the last layer's patch tokens get a zero gradient, so the
    search goes back to a layer whose patch tokens reach the class token through attention."""
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2,
                                            hidden_dim=16, mlp_dim=32)
    inputs = keras.Input((32, 32, 3))
    tokens = backbone(inputs)
    cls = keras.layers.Cropping1D((0, 16))(tokens)
    model = keras.Model(inputs, _head(keras.layers.Flatten()(cls)))
    cam = get_cam("gradcam", model)
    assert cam.layer != f"{backbone.name}/vit_encoder"
    assert cam.layer.startswith(backbone.name + "/")
    assert np.isfinite(cam(_x())).all()


def test_a_model_without_a_spatial_layer_gets_one_message_naming_the_search():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, _head(keras.layers.Dense(4, activation="relu")(x)))
    with pytest.raises(ConfigError, match=r"no layer with a spatial output.*searched \d+ layer"):
        get_cam("gradcam", model)


def test_a_named_one_by_one_map_is_explained_but_the_search_prefers_a_larger_one():
    """A tiny input can leave the registered layer at 1 x 1 (benchmarks/gpu.py --tiny): naming it
    works; ``auto`` on an unknown model picks the last map with more than one position."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    big = keras.layers.Conv2D(4, 3, padding="same", name="big")(inputs)  # linear: no dead unit can
    one = keras.layers.Conv2D(4, 8, name="one")(big)  # 1 x 1                 # cut the gradient
    model = keras.Model(inputs, _head(keras.layers.GlobalAveragePooling2D()(one)))
    assert get_cam("gradcam", model).layer == "big"
    maps = get_cam("gradcam", model, "one")(_x(8))
    assert maps.shape == (2, 8, 8) and np.isfinite(maps).all()
