"""ERNet (paper B, paper 003; SPEC §4): a ResNet whose Block-B shortcuts are ER connections.

A stage is one Block A (the projection block: 1x1 convolution + BN on the shortcut) followed
by Block B's. In Block B number ``j`` the identity shortcut is replaced by an ER connection
over the outputs ``x_1 .. x_{j-1}`` of every earlier block of the same stage (``x_1`` is the
Block A output)::

    x_j = ReLU(F_j(x_{j-1}) + sum_{i<j} w_j^i * N(x_i))

``F_j`` is the usual residual branch, ``N`` a BatchNormalization without gamma and beta and
``w_j^i`` a learnable per-channel vector, initialised to 1 for ``i = j-1`` and 0 otherwise, so an
untrained ERNet is a ResNet whose shortcut is the normalised previous output.

Surprising but equivalent: the paper writes one normalisation ``N_j^i`` per (block, input)
pair. A non-affine BN has no trainable parameters, and every ``N_j^i`` with the same ``i`` sees
the same tensor, so their batch statistics (training) and moving averages (inference) are
identical. ERNet therefore normalises each block output once (layer ``{stage}_block{i}_er_norm``)
and every later block of the stage reuses it: the same function with fewer operations.

Convolution and BN layers carry Keras' ResNet names (``conv1_conv``, ``conv2_block1_0_conv``,
``conv2_block2_3_bn``, ...; convolutions with bias, BN epsilon 1.001e-5), so ``weights="imagenet"``
copies ``keras.applications.ResNet50`` / ``ResNet101`` weights into ERNet-50 / ERNet-101 by name.
ERNet-18/34 use basic blocks (two 3x3 convolutions), for which Keras ships no ImageNet weights.
Every Block A has a projection shortcut (also the first one of ERNet-18/34, where torchvision's
ResNet-18/34 use an identity): the paper builds every stage from "a single Block A".

Preprocessing is ``"caffe"`` (Keras' ResNet ``preprocess_input``) so ImageNet weights see the
inputs they were trained on; the paper only says images are "normalised" after Macenko.
"""

from __future__ import annotations

import keras

from breastcam.errors import ConfigError
from breastcam.models.ernet_layers import ERWeightedSum
from breastcam.models.heads import classification_head
from breastcam.models.registry import register
from breastcam.models.resnet import BN_EPSILON, resnet_stem
from breastcam.models import hub_resnet
from breastcam.models.weights import apply_weights, load_application

#: block type and blocks per stage of each depth (He et al. 2016, Table 1).
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
STAGE_FILTERS = (64, 128, 256, 512)  # bottleneck blocks output 4x this

#: Paper 003 Table 1 (depth ablation on BreakHis, all magnifications pooled), as printed (%,
#: GFLOPs, millions). The parameter column matches ImageNet 1000-class ResNets rather than a
#: 2-class model: 25.56 M is torchvision's ResNet-50 with its 1000-way classifier.
PAPER_TABLE1: dict[int, dict[str, float]] = {
    50: {"accuracy": 95.75, "gflops": 7.8, "params_m": 25.56, "precision": 97.5, "recall": 96.03, "f1": 96.76},
    34: {"accuracy": 93.34, "gflops": 6.2, "params_m": 21.70, "precision": 93.68, "recall": 92.81, "f1": 94.17},
    101: {"accuracy": 95.92, "gflops": 9.2, "params_m": 45.6, "precision": 96.25, "recall": 94.23, "f1": 95.86},
    18: {"accuracy": 93.22, "gflops": 3.4, "params_m": 11.6, "precision": 92.07, "recall": 91.05, "f1": 93.17},
}

_IMAGENET_APPS = {50: "ResNet50", 101: "ResNet101"}


def _conv_bn(x, filters, kernel_size, stride, name, padding="valid"):
    x = keras.layers.Conv2D(filters, kernel_size, strides=stride, padding=padding, name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=f"{name}_bn")(x)


def _residual_branch(x, filters, stride, block_type, name):
    """``F(x)``: the residual branch, ending in BN (no final ReLU), Keras ResNet names."""
    if block_type == "bottleneck":
        # Keras' ResNet v1 puts the stride on the first 1x1 convolution (Caffe layout).
        x = _conv_bn(x, filters, 1, stride, f"{name}_1")
        x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
        x = _conv_bn(x, filters, 3, 1, f"{name}_2", padding="same")
        x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
        return _conv_bn(x, 4 * filters, 1, 1, f"{name}_3")
    x = _conv_bn(x, filters, 3, stride, f"{name}_1", padding="same")
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    return _conv_bn(x, filters, 3, 1, f"{name}_2", padding="same")


#: ER connection readings: "weighted" (SPEC section 4, the default: the count-consistent one) and
#: "paper" (paper 003 section 3.2 / eq. 10 taken literally: an ER path of convolutions).
ER_CONNECTIONS = ("weighted", "paper")


def _er_path(x, filters, out_channels, name):
    """Paper 003 section 3.2: the ER shortcut "includes a 1x1 convolutional block accompanied by
    two 3x3 convolutional blocks, operating on the previous feature maps" (BN + ReLU between)."""
    x = keras.layers.Activation("relu", name=f"{name}_a_relu")(_conv_bn(x, filters, 1, 1, f"{name}_a"))
    x = keras.layers.Activation("relu", name=f"{name}_b_relu")(_conv_bn(x, filters, 3, 1, f"{name}_b", padding="same"))
    return _conv_bn(x, out_channels, 3, 1, f"{name}_c", padding="same")


def _stage(x, filters, blocks, stride, block_type, name, er_connection="weighted"):
    """Block A (projection shortcut) then Block B's with ER connections; returns the output.

    ``er_connection="weighted"``: ``x_j = ReLU(F_j(x_{j-1}) + sum_i w_j^i N(x_i))``.
    ``"paper"`` (eq. 10 literally, ``F_l = h_l[sum_i ER_l^i(x_i) + x_l]``): the ER terms go
    *inside* the block's convolutions and pass through an ER path of a 1x1 and two 3x3
    convolutions, ``x_j = ReLU(F_j(x_{j-1} + ERPath_j(sum_i w_j^i N(x_i))))``, with no identity
    shortcut ("the proposed network incorporates neither dense concatenation nor identity
    shortcuts", section 1). It adds convolutions that the paper's ERNet-50 count (25.56 M, the
    same as ResNet-50's) leaves no room for: see ``breastcam models``.
    """
    out_channels = 4 * filters if block_type == "bottleneck" else filters
    block = f"{name}_block1"
    shortcut = _conv_bn(x, out_channels, 1, stride, f"{block}_0")
    x = _residual_branch(x, filters, stride, block_type, block)
    x = keras.layers.Add(name=f"{block}_add")([shortcut, x])
    x = keras.layers.Activation("relu", name=f"{block}_out")(x)

    normalised = []  # N(x_1), N(x_2), ...: each block output normalised once, reused after
    for j in range(2, blocks + 1):
        normalised.append(
            keras.layers.BatchNormalization(
                axis=-1, center=False, scale=False, epsilon=BN_EPSILON, name=f"{name}_block{j - 1}_er_norm"
            )(x)
        )
        block = f"{name}_block{j}"
        er = ERWeightedSum(name=f"{block}_er")(list(normalised))
        if er_connection == "paper":
            er = _er_path(er, filters, out_channels, f"{block}_er_path")
            inside = keras.layers.Add(name=f"{block}_er_in")([x, er])
            x = _residual_branch(inside, filters, 1, block_type, block)
        else:
            residual = _residual_branch(x, filters, 1, block_type, block)
            x = keras.layers.Add(name=f"{block}_add")([er, residual])
        x = keras.layers.Activation("relu", name=f"{block}_out")(x)
    return x


def ernet(
    depth: int,
    num_classes: int,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    weights: str | None = None,
    *,
    dropout: float = 0.0,
    er_connection: str = "weighted",
    name: str | None = None,
) -> keras.Model:
    """ERNet of ``depth`` in {18, 34, 50, 101}: root block, four stages, GAP, Dense, softmax.

    ``weights``: ``None``, ``"imagenet"`` (ERNet-50/101: copied by layer name from
    ``keras.applications.ResNet50/101``; ERNet-18: from keras-hub's ``resnet_18_imagenet``
    preset, :mod:`breastcam.models.hub_resnet`; the ER normalisations and weights keep their
    initialisation), a local keras-hub ResNet-18 preset folder (ERNet-18), or the path of a
    weights file. ``dropout`` before the classifier is 0 in
    paper 003 (which names none). ``er_connection``: ``"weighted"`` (default, SPEC section 4) or
    ``"paper"`` (eq. 10 literally, with convolutions on the ER path; see :func:`_stage`).
    """
    if er_connection not in ER_CONNECTIONS:
        raise ConfigError(f"er_connection must be one of {ER_CONNECTIONS}, got {er_connection!r}")
    if depth not in DEPTHS:
        raise ConfigError(f"ERNet depth must be one of {sorted(DEPTHS)}, got {depth!r}")
    hub = depth in hub_resnet.PRESETS and (weights == "imagenet" or hub_resnet.is_preset_folder(weights))
    if weights == "imagenet" and depth not in _IMAGENET_APPS and not hub:
        raise ConfigError(
            f"ERNet-{depth} has no ImageNet weights: Keras ships ImageNet ResNets only with "
            "bottleneck blocks (ResNet50/101/152) and keras-hub a basic-block ResNet-18 only (its "
            "ResNet-34 is the 'vd' variant, another architecture). Build it with weights=None "
            "(random initialisation) or weights='/path/to/file.weights.h5'."
        )
    block_type, blocks = DEPTHS[depth]

    # === Functional Model ===
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = resnet_stem(inputs)  # conv1 + pool1, Keras' names
    for stage, (filters, n_blocks) in enumerate(zip(STAGE_FILTERS, blocks)):
        x = _stage(x, filters, n_blocks, 1 if stage == 0 else 2, block_type, name=f"conv{stage + 2}",
                   er_connection=er_connection)
    outputs = classification_head(x, num_classes, pooling="avg", dropout=dropout)
    model = keras.Model(inputs, outputs, name=name or f"ernet{depth}")

    if hub:  # ERNet-18: keras-hub's ImageNet ResNet-18 (a preset name or a local preset folder)
        source = hub_resnet.load_hub_resnet(hub_resnet.PRESETS[depth] if weights == "imagenet" else weights)
        hub_resnet.copy_hub_resnet(source, model)
        return model

    def imagenet_source():  # the Keras ResNet whose conv / BN weights ERNet copies by name
        app = getattr(keras.applications, _IMAGENET_APPS[depth])
        return load_application(app, input_shape=tuple(input_shape), weights="imagenet")

    return apply_weights(model, weights, imagenet_source=imagenet_source if depth in _IMAGENET_APPS else None)


def _last_block(depth: int) -> str:
    return f"conv5_block{DEPTHS[depth][1][-1]}_out"


_SOURCE = (
    "paper 003 Table 1 prints {m} M parameters for ERNet-{d}; the Table's figures sit close to "
    "torchvision's 1000-class ImageNet ResNets (ResNet-50: 25,557,032), not to a 2-class model. "
    "breastcam's 2-class ERNet-50 counts 23,639,682 = Keras' ResNet50 (convolutions with bias) "
    "+ 47,872 for the ER connections (+0.2 %)"
)


def _register(depth: int, published: int):
    @register(
        f"ernet{depth}",
        cam_layer=_last_block(depth),
        input_shape=(224, 224, 3),
        preprocessing="caffe",
        paper="B",
        published_params={2: published},
        source=_SOURCE.format(m=PAPER_TABLE1[depth]["params_m"], d=depth),
    )
    def build(num_classes, input_shape, weights, **options):
        return ernet(depth, num_classes, input_shape, weights, **options)

    build.__name__ = build.__qualname__ = f"ernet{depth}"
    build.__doc__ = f"ERNet-{depth} (paper 003); options: dropout, er_connection ('weighted' | 'paper')."
    return build


ernet18 = _register(18, 11_600_000)
ernet34 = _register(34, 21_700_000)
ernet50 = _register(50, 25_560_000)
ernet101 = _register(101, 45_600_000)
