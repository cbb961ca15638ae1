"""SE-ResNet50 (Hu et al. 2018), a baseline of paper A, built on the hand-made ResNet50.

A squeeze-and-excitation block (r = 16) rescales the residual branch of every one of the 16
bottlenecks before the addition; layer names are Keras' ResNet50 names plus
``{block}_se_squeeze/_reduce/_expand/_excite``.

Reading of the published count (paper 000 Table 7: 27,073,090 for 2 classes; paper 001 Table X:
27,073,603 for 3, 27,074,116 for 4): the figures grow by 513 per class, so the classifier sees
512 features, and 27,073,090 = 23,508,032 (PyTorch ResNet50 without fc) + 2,514,944 (SE blocks
*without* biases, r = 16) + 1,049,088 (Dense 2048 -> 512) + 1,026 (Dense 512 -> 2). The defaults
(``se_use_bias=False``, ``hidden_units=(512,)``) build exactly that, so as for DALAResNet50 the
Keras count is the published one + 79,680 (conv biases and BatchNorm statistics). The textbook
SE block has biases: ``se_use_bias=True, hidden_units=()``.

Keras ships no SE-ResNet ImageNet weights: ``weights="imagenet"`` initialises the ResNet50 layers
from Keras' ResNet50 and leaves the SE blocks and the head random.
"""

from __future__ import annotations

from typing import Sequence

import keras

from breastcam.models.heads import classification_head
from breastcam.models.layers import squeeze_excite
from breastcam.models.registry import register
from breastcam.models.resnet import resnet50_backbone, resnet50_imagenet_source
from breastcam.models.weights import apply_weights, backbone_weights


@register(
    "seresnet50",
    cam_layer="conv5_block3_out",
    input_shape=(224, 224, 3),
    preprocessing="caffe",
    paper="A",
    published_params={2: 27_073_090, 3: 27_073_603, 4: 27_074_116},
    source="paper 000 Table 7 (2 classes); paper 001 Table X (Mini-DDSM 3, BACH 4 classes)",
)
def build_seresnet50(
    num_classes,
    input_shape,
    weights=None,
    *,
    reduction: int = 16,
    se_use_bias: bool = False,
    hidden_units: Sequence[int] = (512,),
    dropout: float = 0.0,
) -> keras.Model:
    """SE-ResNet50: SE (``reduction``) in every bottleneck, GAP -> hidden Dense -> logits."""

    def se(residual, *, name):
        return squeeze_excite(residual, reduction=reduction, use_bias=se_use_bias, name=f"{name}_se")

    backbone_weights(weights)  # a missing file fails before the build

    # === Functional Model ===
    inputs = keras.Input(shape=tuple(input_shape), name="input_layer")
    features = resnet50_backbone(inputs, residual_fn=se)
    outputs = classification_head(features, num_classes, hidden_units=tuple(hidden_units), dropout=dropout)
    model = keras.Model(inputs, outputs, name="seresnet50")
    return apply_weights(model, weights, imagenet_source=resnet50_imagenet_source(input_shape))
