"""ResNet50: a hand-built functional graph with Keras' layer names, and the two plain baselines.

:func:`resnet50_backbone` rebuilds ``keras.applications.ResNet50(include_top=False)`` layer by
layer with the same names (``conv1_pad``, ``conv1_conv``, ..., ``conv5_block3_out``), the same
23,587,712 parameters and the same outputs for the same weights, but with two hooks:
``residual_fn`` edits the residual branch of every bottleneck before the addition (SE-ResNet50)
and ``after_stage`` edits the output of a stage (DALAResNet50's attention placement). ImageNet
weights are copied into it by layer name from the Keras application.

Registered here:

- ``resnet50``: ``keras.applications.ResNet50`` + GAP -> (Dropout) -> logits -> softmax.
- ``resnet50_frozen10``: paper C (Gharaibeh et al.): the same at 112 x 112 with every backbone
  layer frozen except the last ``trainable_last`` (10) and every BatchNormalization layer
  (paper 004 Algorithm 1, ``include_batchnorm=True``), then GAP -> logits -> softmax.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers

from breastcam.errors import ConfigError
from breastcam.models.heads import classification_head
from breastcam.models.registry import register
from breastcam.models.weights import apply_weights, backbone_weights, file_weights, load_application

BN_EPSILON = 1.001e-5  # keras.applications.resnet's value; ImageNet statistics assume it
#: (filters of the bottleneck's 3x3 conv, number of blocks) of ResNet50's stages conv2..conv5.
RESNET50_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))
#: Output layer of each stage, by stage number 1..4 (paper A counts the stages from 1).
STAGE_OUTPUTS = {1: "conv2_block3_out", 2: "conv3_block4_out", 3: "conv4_block6_out", 4: "conv5_block3_out"}

ResidualFn = Callable[..., object]  # (residual_tensor, name=block_name) -> tensor
StageFn = Callable[..., object]  # (stage_output, stage=k) -> tensor


def resnet_stem(inputs):
    """conv1 + pool1 of Keras' ResNet (7x7/2 conv, BN, ReLU, 3x3/2 max pool)."""
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=True, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def bottleneck_block(x, filters: int, *, stride: int = 1, conv_shortcut: bool = False, name: str, residual_fn: ResidualFn | None = None):
    """Keras' ``resnet.block1``: 1x1 -> 3x3 -> 1x1 (4*filters) plus shortcut, then ReLU.

    ``residual_fn(residual, name=name)`` (optional) transforms the residual branch after its
    last BatchNormalization, before ``{name}_add``.
    """
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=f"{name}_3_bn")(x)
    if residual_fn is not None:
        x = residual_fn(x, name=name)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def resnet50_backbone(inputs, *, residual_fn: ResidualFn | None = None, after_stage: StageFn | None = None):
    """ResNet50 without top on ``inputs``; returns the last stage's (possibly edited) output.

    ``after_stage(x, stage=k)`` is called on each stage output (k = 1..4, see
    :data:`STAGE_OUTPUTS`) and may return a new tensor that feeds the next stage.
    """
    x = resnet_stem(inputs)
    for stage, (filters, blocks) in enumerate(RESNET50_STAGES, start=1):
        prefix = f"conv{stage + 1}"
        for block in range(1, blocks + 1):
            x = bottleneck_block(
                x,
                filters,
                stride=(1 if stage == 1 else 2) if block == 1 else 1,
                conv_shortcut=block == 1,
                name=f"{prefix}_block{block}",
                residual_fn=residual_fn,
            )
        if after_stage is not None:
            x = after_stage(x, stage=stage)
    return x


def resnet50_imagenet_source(input_shape) -> Callable[[], keras.Model]:
    """Zero-argument callable giving ``keras.applications.ResNet50`` with ImageNet weights."""
    return lambda: load_application(keras.applications.ResNet50, input_shape=input_shape, weights="imagenet")


# === Registered baselines ===


def _resnet50_application(num_classes, input_shape, weights, *, name, dropout):
    app = load_application(keras.applications.ResNet50, input_shape=input_shape, weights=backbone_weights(weights))
    outputs = classification_head(app.output, num_classes, dropout=dropout)
    return app, apply_weights(keras.Model(app.input, outputs, name=name), file_weights(weights))


@register(
    "resnet50",
    cam_layer="conv5_block3_out",
    input_shape=(224, 224, 3),
    preprocessing="caffe",
    paper="A,C",
    published_params={2: 21_797_672, 3: 21_797_672, 4: 21_805_868},
    source="paper 000 Table 7 (2 classes); paper 001 Table X (BACH 4, Mini-DDSM 3 classes)",
)
def build_resnet50(num_classes, input_shape, weights=None, *, dropout: float = 0.0) -> keras.Model:
    """``keras.applications.ResNet50`` backbone + GAP -> (Dropout) -> logits -> softmax.

    Paper A trains its baselines with dropout 0.25 (``experiments/dala/*.yaml`` pass
    ``dropout=0.25``); paper C's unmodified ResNet50 has none. Paper A's printed count,
    21,797,672, is exactly torchvision's ResNet-34 with its 1000-class fc, not a ResNet50 (PyTorch:
    23,512,130 for 2 classes); ``breastcam.models.param_check`` reproduces it, this builder stays
    the ResNet50 the papers name.
    """
    _, model = _resnet50_application(num_classes, input_shape, weights, name="resnet50", dropout=dropout)
    return model


@register(
    "resnet50_frozen10",
    cam_layer="conv5_block3_out",
    input_shape=(112, 112, 3),
    preprocessing="caffe",
    paper="C",
    source="paper 004 (Gharaibeh et al.), Algorithm 1",
)
def build_resnet50_frozen10(
    num_classes,
    input_shape,
    weights=None,
    *,
    trainable_last: int = 10,
    train_batchnorm: bool = True,
    dropout: float = 0.0,
) -> keras.Model:
    """Paper C's "modified ResNet50": backbone frozen except the last ``trainable_last`` layers
    and (``train_batchnorm=True``, the paper) every BatchNormalization layer.

    Paper 004 section 3.7: "frozen ... except for the last 10 layers and any bulk flattening
    layers" (batch normalisation, garbled), Algorithm 1: ``Set Trainable Layers(model,
    trainable layers=10, include_batchnorm=True)``. The count is over the Keras application's
    layer list (input layer included), so the last 10 are ``conv5_block3_1_conv`` ...
    ``conv5_block3_out``. Trainable BN layers also update their moving statistics in ``fit``.
    ``train_batchnorm=False`` freezes the BN layers outside the last 10 (the earlier breastcam behaviour).
    The head (GAP -> logits -> softmax) is trainable.
    """
    if not isinstance(trainable_last, int) or trainable_last < 0:
        raise ConfigError(f"trainable_last must be an int >= 0, got {trainable_last!r}")
    app, model = _resnet50_application(num_classes, input_shape, weights, name="resnet50_frozen10", dropout=dropout)
    n_frozen = len(app.layers) - trainable_last
    for i, layer in enumerate(app.layers):
        is_bn = isinstance(layer, layers.BatchNormalization)
        layer.trainable = i >= n_frozen or (bool(train_batchnorm) and is_bn)
    return model


def build_hand_resnet50(input_shape, weights=None) -> keras.Model:
    """The hand-built ResNet50 without top (for tests and as ERNet's reference)."""
    backbone_weights(weights)  # a missing file fails before the build
    inputs = keras.Input(shape=tuple(input_shape), name="input_layer")
    model = keras.Model(inputs, resnet50_backbone(inputs), name="resnet50_backbone")
    return apply_weights(model, weights, imagenet_source=resnet50_imagenet_source(input_shape))
