"""Transformer baselines of paper A (Table 6/VII): ViT-B/16, Swin-B, DINOv2 ViT-B/14.

The backbones are keras-hub's (``ViTBackbone``, ``SwinTransformerBackbone``,
``DINOV2Backbone``), built from their published configuration (``weights=None``) or loaded from a
keras-hub preset. Each sits as one nested layer of the functional model (keras-hub's ViT layers
cannot be rebuilt one by one from their configs, the backbones can), followed by:

    backbone tokens -> TokensToGrid ("token_grid", the CAM layer) -> GlobalAveragePooling2D
    -> [Dropout] -> Dense ("logits") -> softmax ("probabilities")   (heads.classification_head)

``TokensToGrid`` drops the class / register tokens and lays the patch tokens out as a
``(H/p, W/p, hidden)`` map, so CAM methods use it like a CNN's last feature map. The head pools
the mean of the patch tokens (Swin's own head; ``pooling="gap"`` in keras-hub's ViT classifier)
rather than the class token: a head on the class token would make the logits independent of the
last layer's patch tokens, and every gradient-based CAM on the grid would be zero.

Preprocessing follows each preset's training: ViT ``minus_one_one`` (mean = std = 0.5),
Swin and DINOv2 ``torch`` (ImageNet mean / std). Presets cannot be downloaded offline; pass a
local preset directory (``weights="/path/to/preset"``) or a weights file instead.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import keras
import keras_hub

from breastcam.errors import ConfigError
from breastcam.models import dinov2_save
from breastcam.models.heads import classification_head
from breastcam.models.registry import register
from breastcam.models.weights import WeightsUnavailableError, apply_weights


dinov2_save.apply()  # keras-hub's DINOv2 reloads a trained model inexactly otherwise


@keras.saving.register_keras_serializable(package="breastcam")
class TokensToGrid(keras.layers.Layer):
    """``(B, prefix + h*w, C)`` tokens -> ``(B, h, w, C)`` map, dropping the first ``prefix``."""

    def __init__(self, grid_size, num_prefix_tokens=0, **kwargs):
        super().__init__(**kwargs)
        grid_size = tuple(int(g) for g in grid_size)
        if len(grid_size) != 2 or min(grid_size) < 1:
            raise ConfigError(f"grid_size must be (height, width) >= 1, got {grid_size!r}")
        if int(num_prefix_tokens) < 0:
            raise ConfigError(f"num_prefix_tokens must be >= 0, got {num_prefix_tokens!r}")
        self.grid_size = grid_size
        self.num_prefix_tokens = int(num_prefix_tokens)

    def build(self, input_shape):
        tokens = input_shape[1]
        expected = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        if tokens is not None and tokens != expected:
            raise ConfigError(
                f"{self.name}: got {tokens} tokens, expected {self.num_prefix_tokens} prefix "
                f"tokens + a {self.grid_size[0]}x{self.grid_size[1]} grid = {expected}"
            )

    def call(self, inputs):
        patches = inputs[:, self.num_prefix_tokens :, :]
        return keras.ops.reshape(patches, (-1, *self.grid_size, inputs.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.grid_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"grid_size": list(self.grid_size), "num_prefix_tokens": self.num_prefix_tokens})
        return config


class PresetUnavailableError(WeightsUnavailableError):
    """A keras-hub preset could not be downloaded or loaded (typically: no network)."""

    def __init__(self, model: str, preset: str, reason: BaseException | str):
        self.reason = reason
        RuntimeError.__init__(
            self,
            f"pretrained weights for {model} (keras-hub preset {preset!r}) could not be "
            f"downloaded or loaded ({type(reason).__name__}: {reason}). Ways forward: build with "
            "weights=None (random initialisation), weights='/path/to/preset_dir' (a keras-hub "
            "preset directory, e.g. one downloaded elsewhere with "
            "keras_hub.models.Backbone.from_preset(...).save_to_preset(dir), holding "
            "config.json and model.weights.h5), or weights='/path/to/file.weights.h5' (weights "
            "saved from this breastcam model).",
        )


# name -> (backbone class, configuration of the paper's model, keras-hub preset)
_FAMILIES = {
    "vit_b16": (
        keras_hub.models.ViTBackbone,
        {"patch_size": 16, "num_layers": 12, "num_heads": 12, "hidden_dim": 768, "mlp_dim": 3072},
        "vit_base_patch16_224_imagenet",
    ),
    "swin": (
        keras_hub.models.SwinTransformerBackbone,
        {"patch_size": 4, "embed_dim": 128, "depths": (2, 2, 18, 2), "num_heads": (4, 8, 16, 32), "window_size": 7},
        "swin_base_patch4_window7_224",
    ),
    "dinov2_b14": (
        keras_hub.models.DINOV2Backbone,
        {"patch_size": 14, "num_layers": 12, "hidden_dim": 768, "num_heads": 12, "intermediate_dim": 3072},
        "dinov2_base",
    ),
}
BACKBONE_CONFIGS = {name: dict(cfg) for name, (_, cfg, _) in _FAMILIES.items()}
PRESETS = {name: preset for name, (_, _, preset) in _FAMILIES.items()}


def _is_weights_file(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and weights != "imagenet" and Path(weights).expanduser().is_file()


def _backbone_options(cls) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {p for p, v in params.items() if v.kind is v.POSITIONAL_OR_KEYWORD} - {
        "self", "image_shape", "data_format", "dtype", "name"
    }


def _backbone(name, input_shape, weights, config):
    cls, default, preset = _FAMILIES[name]
    unknown = set(config) - _backbone_options(cls)
    if unknown:
        raise ConfigError(
            f"{name}: unknown option(s) {sorted(unknown)}; {cls.__name__} takes "
            f"{sorted(_backbone_options(cls))} (and the head takes dropout)"
        )
    if weights is None or _is_weights_file(weights):
        return cls(image_shape=tuple(input_shape), **{**default, **config}, name=f"{name}_backbone")
    if config:
        raise ConfigError(
            f"{name}: backbone options {sorted(config)} cannot be combined with pretrained "
            f"weights {weights!r}: the preset fixes the architecture"
        )
    if isinstance(weights, str) and weights == "imagenet":
        try:
            return cls.from_preset(preset, image_shape=tuple(input_shape))
        except Exception as err:  # noqa: BLE001 - kagglehub / requests raise many types offline
            raise PresetUnavailableError(name, preset, err) from err
    path = Path(weights).expanduser() if isinstance(weights, (str, os.PathLike)) else None
    if path is None or not path.is_dir():
        raise ConfigError(
            f"{name}: weights must be None, 'imagenet', a keras-hub preset directory or a weights "
            f"file, got {weights!r} (no such file or directory)"
        )
    try:
        return cls.from_preset(str(path), image_shape=tuple(input_shape))
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"{name}: {str(path)!r} is not a loadable {cls.__name__} preset: {err}") from err


def _grid(backbone, input_shape) -> tuple[tuple[int, int], int]:
    """(grid height, grid width) and number of prefix tokens of a backbone's output."""
    h, w = input_shape[0], input_shape[1]
    if isinstance(backbone, keras_hub.models.SwinTransformerBackbone):
        h, w = h // backbone.patch_size, w // backbone.patch_size
        for _ in range(len(backbone.depths) - 1):  # each patch merging halves, padding odd sizes
            h, w = (h + 1) // 2, (w + 1) // 2
        return (h, w), 0
    if isinstance(backbone, keras_hub.models.DINOV2Backbone):
        p = backbone.patch_size
        return (h // p, w // p), 1 + backbone.num_register_tokens
    ph, pw = backbone.patch_size
    return (h // ph, w // pw), int(backbone.use_class_token)


def transformer(
    name: str,
    num_classes: int,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    weights: str | None = None,
    *,
    dropout: float = 0.0,
    **backbone_options,
) -> keras.Model:
    """Transformer ``name`` (``vit_b16``, ``swin``, ``dinov2_b14``) with breastcam's head.

    ``weights``: ``None`` (the paper's configuration, random), ``"imagenet"`` (the keras-hub
    preset in :data:`PRESETS`), a keras-hub preset directory, or a weights file saved from this
    model. ``backbone_options`` override the configuration (``num_layers``, ``hidden_dim``...)
    for small test models; ``dropout`` goes before the classifier.
    """
    if name not in _FAMILIES:
        raise ConfigError(f"unknown transformer {name!r}; choose one of {', '.join(_FAMILIES)}")
    backbone = _backbone(name, input_shape, weights, backbone_options)
    grid, prefix = _grid(backbone, input_shape)

    # === Functional Model ===
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    tokens = backbone({"images": inputs} if isinstance(backbone.input, dict) else inputs)
    grid_map = TokensToGrid(grid, prefix, name="token_grid")(tokens)
    outputs = classification_head(grid_map, num_classes, pooling="avg", dropout=dropout)
    model = keras.Model(inputs, outputs, name=name)

    if _is_weights_file(weights):
        apply_weights(model, weights)
    return model


_SOURCE_A = "paper 000 Table 7 / paper 001 Tables IX-X (BreakHis 2, Mini-DDSM 3, BACH 4 classes)"


@register(
    "vit_b16",
    cam_layer="token_grid",
    preprocessing="minus_one_one",
    paper="A",
    published_params={2: 51_375_106, 3: 51_376_131, 4: 51_385_352},
    small=dict(input_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32),
    source=_SOURCE_A + "; these do NOT fit ViT-B/16 (85.8 M backbone): the +1,025 per class "
    "points to a 1,024-wide final layer, so the paper's 'ViT' was some other configuration "
    "(width 1024, 4 blocks, patch 16 fits the 2- and 3-class counts exactly: "
    "breastcam.models.param_check); breastcam builds ViT-B/16 as SPEC §3 names it",
)
def vit_b16(num_classes, input_shape, weights, **options):
    """ViT-B/16 (patch 16, 12 layers, hidden 768, 12 heads, MLP 3072)."""
    return transformer("vit_b16", num_classes, input_shape, weights, **options)


@register(
    "swin",
    cam_layer="token_grid",
    preprocessing="torch",
    paper="A",
    published_params={2: 86_745_274, 3: 86_746_299, 4: 86_753_470},
    small=dict(input_shape=(32, 32, 3), embed_dim=8, depths=(2, 1), num_heads=(1, 2), window_size=4),
    source=_SOURCE_A + "; 2 and 3 classes equal keras-hub's Swin-B backbone + Dense exactly "
    "(the 4-class figure is 6,146 above that, a misprint or another head)",
)
def swin(num_classes, input_shape, weights, **options):
    """Swin-B (patch 4, window 7, embed 128, depths 2-2-18-2, heads 4-8-16-32)."""
    return transformer("swin", num_classes, input_shape, weights, **options)


@register(
    "dinov2_b14",
    cam_layer="token_grid",
    preprocessing="torch",
    paper="A",
    published_params={2: 86_582_018, 3: 86_582_787, 4: 86_583_556},
    small=dict(input_shape=(28, 28, 3), patch_size=7, num_layers=1, num_heads=2, hidden_dim=16,
               intermediate_dim=32),
    source=_SOURCE_A + "; equal to keras-hub's DINOv2 ViT-B/14 + Dense exactly when its "
    "224-px interpolated position-embedding copy (257 x 768, a derived buffer) is not counted",
)
def dinov2_b14(num_classes, input_shape, weights, **options):
    """DINOv2 ViT-B/14 (patch 14, 12 layers, hidden 768, 12 heads, MLP 3072)."""
    return transformer("dinov2_b14", num_classes, input_shape, weights, **options)
