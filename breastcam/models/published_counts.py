"""Counting tools for the papers' printed parameter counts (PyTorch's convention).

Papers A and B count parameters the PyTorch way (``sum(p.numel() for p in
model.parameters())``): no BatchNorm moving statistics and, in torchvision's CNNs, no conv
biases. Keras' ``count_params()`` counts both, so a Keras ResNet50 is 79,680 above the same
network in PyTorch (SPEC section 3). The functions here build small Keras graphs in PyTorch's
layout so that a printed count can be checked exactly, and give ViT counts analytically. The
table of which printed count is reproduced by which configuration is
:mod:`breastcam.models.param_check`; ``benchmarks/param_count_search.py`` is the search.
"""

from __future__ import annotations

import math

import keras
from keras import layers

#: torchvision ResNets: block type, blocks per stage, pooled features.
TORCHVISION = {
    "resnet18": {"block": "basic", "blocks": (2, 2, 2, 2), "features": 512},
    "resnet34": {"block": "basic", "blocks": (3, 4, 6, 3), "features": 512},
    "resnet50": {"block": "bottleneck", "blocks": (3, 4, 6, 3), "features": 2048},
    "resnet101": {"block": "bottleneck", "blocks": (3, 4, 23, 3), "features": 2048},
}


def torch_count(model: keras.Model) -> int:
    """Parameters as PyTorch counts them: the trainable weights (BN moving statistics excluded).

    Exact for graphs whose layers are all trainable and whose convolutions carry a bias exactly
    where the PyTorch model's do (the graphs of :func:`torchvision_resnet`, Keras' DenseNet121
    and VGG16).
    """
    return int(sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights))


def _conv_bn(x, filters, kernel, stride):
    pad = kernel // 2
    if pad:
        x = layers.ZeroPadding2D(pad)(x)
    x = layers.Conv2D(filters, kernel, strides=stride, use_bias=False)(x)
    return layers.BatchNormalization(epsilon=1e-5)(x)


def _block(x, filters, stride, kind, project):
    out = 4 * filters if kind == "bottleneck" else filters
    shortcut = _conv_bn(x, out, 1, stride) if project else x
    if kind == "bottleneck":  # torchvision v1.5: the stride sits on the 3x3 convolution
        y = layers.ReLU()(_conv_bn(x, filters, 1, 1))
        y = layers.ReLU()(_conv_bn(y, filters, 3, stride))
        y = _conv_bn(y, out, 1, 1)
    else:
        y = layers.ReLU()(_conv_bn(x, filters, 3, stride))
        y = _conv_bn(y, filters, 3, 1)
    return layers.ReLU()(layers.Add()([shortcut, y]))


def torchvision_resnet(depth: int, *, include_top: bool = True, classes: int = 1000, input_shape=(32, 32, 3)) -> keras.Model:
    """A Keras graph with torchvision's ResNet-``depth`` layout (no conv biases; counting only).

    ``include_top``: GAP -> Dense(``classes``), torchvision's ``fc``. ``torch_count`` of it equals
    ``sum(p.numel() for p in torchvision.models.resnet{depth}().parameters())`` (11,689,512 /
    21,797,672 / 25,557,032 / 44,549,160 with the 1000-class fc).
    """
    cfg = TORCHVISION[f"resnet{depth}"]
    inputs = keras.Input(input_shape)
    x = layers.ReLU()(_conv_bn(inputs, 64, 7, 2))
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    in_channels = 64
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), cfg["blocks"])):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            out = 4 * filters if cfg["block"] == "bottleneck" else filters
            x = _block(x, filters, stride, cfg["block"], project=b == 0 and (stride != 1 or in_channels != out))
            in_channels = out
    if include_top:
        x = layers.Dense(classes)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, x, name=f"torchvision_resnet{depth}")


def vit_count(*, width: int, depth: int, mlp: int, patch: int, image: int = 224, cls_token: bool = True,
              final_norm: bool = True, pre_logits: int | None = None, classes: int = 2) -> int:
    """Parameters of a ViT encoder (timm / keras-hub layout) + linear head, analytically.

    Patch embedding (conv with bias), learned position embedding for every token, per block
    two LayerNorms, q/k/v/output projections with biases and a two-layer MLP; optional class
    token, final LayerNorm and a ``pre_logits``-wide tanh layer before the classifier.
    """
    tokens = (image // patch) ** 2 + (1 if cls_token else 0)
    block = 4 * width * width + 4 * width + 2 * width * mlp + mlp + width + 4 * width
    total = patch * patch * 3 * width + width + tokens * width + (width if cls_token else 0)
    total += depth * block + (2 * width if final_norm else 0)
    head_in = width
    if pre_logits:
        total += width * pre_logits + pre_logits
        head_in = pre_logits
    return total + head_in * classes + classes
