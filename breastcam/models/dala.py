"""DALAResNet50 (paper A: Liu et al., papers 000-002; SPEC §3).

ResNet50 (ImageNet) -> one dual-activation lightweight attention module -> GAP -> Dropout(0.25)
-> logits -> softmax. The module (``breastcam.models.layers.dala_attention``) is
``x * ReLU(Dense_C(LeakyReLU_0.01(Dense_{C/16}(GAP(x)))))``; at the default place, after stage
4 (``conv5_block3_out``, C = 2048), it has 526,464 parameters.

Parameter counts: the paper prints 24,040,643 (3 classes) and 24,042,692 (4 classes), i.e.
PyTorch's ResNet50 without fc (23,508,032) + 526,464 (``reduction=16``) + 2,049 per class, and
25,611,842 for BreakHis' 2 classes (paper 000 Table 7) = 23,508,032 + 2,099,712 (the module
with ``reduction=4``: 2*2048*512 + 512 + 2048) + 2 * 2,049. So each experiment builds the
reduction its count implies (``experiments/dala/*.yaml``: 4 for BreakHis, 16 for BACH and
Mini-DDSM). Keras' ResNet50 has 79,680 more (26,560 conv biases + 53,120 BatchNorm moving
statistics, which Keras counts and PyTorch's ``parameters()`` does not), so here
``count_params() == published + 79,680`` exactly (``breastcam.models.param_check``).
"""

from __future__ import annotations

import keras

from breastcam.errors import ConfigError
from breastcam.models.heads import classification_head
from breastcam.models.layers import GATES, dala_attention
from breastcam.models.registry import register
from breastcam.models.resnet import STAGE_OUTPUTS, resnet50_backbone, resnet50_imagenet_source
from breastcam.models.weights import apply_weights, backbone_weights

#: Name of the attention module's output at its default place (stage 4): the CAM layer.
ATTENTION_OUT = "dala_attention_out"


@register(
    "dalaresnet50",
    cam_layer=ATTENTION_OUT,
    cam_layer_fallback=STAGE_OUTPUTS[4],
    input_shape=(224, 224, 3),
    preprocessing="minus_one_one",
    paper="A",
    published_params={2: 25_611_842, 3: 24_040_643, 4: 24_042_692},
    source="paper 000 Table 7 (2 classes); paper 001 Table X (Mini-DDSM 3, BACH 4 classes)",
)
def build_dalaresnet50(
    num_classes,
    input_shape,
    weights=None,
    *,
    attention_stage: int = 4,
    gate: str = "relu",
    reduction: int = 16,
    dropout: float = 0.25,
) -> keras.Model:
    """DALAResNet50 with its attention module after stage ``attention_stage`` (1-4).

    ``attention_stage`` 1/2/3/4 inserts the module after ``conv2_block3_out`` /
    ``conv3_block4_out`` / ``conv4_block6_out`` / ``conv5_block3_out`` (256/512/1024/2048
    channels; paper 001 Table II's placement ablation). At stage 4 the CAM layer is the module's
    output ``dala_attention_out``; elsewhere the module is named ``dala_attention_stage{k}``
    and the CAM layer is ``conv5_block3_out`` (``registry.cam_layer(model)`` resolves this).
    ``gate``: ``"relu"`` (the paper) or ``"sigmoid"``. ``weights="imagenet"`` initialises the
    ResNet50 layers from Keras' ImageNet ResNet50; the attention module and head stay random.
    """
    if attention_stage not in STAGE_OUTPUTS:
        raise ConfigError(f"attention_stage must be one of {sorted(STAGE_OUTPUTS)}, got {attention_stage!r}")
    if gate not in GATES:
        raise ConfigError(f"gate must be one of {GATES}, got {gate!r}")
    module_name = "dala_attention" if attention_stage == 4 else f"dala_attention_stage{attention_stage}"

    def after_stage(x, *, stage):
        if stage != attention_stage:
            return x
        return dala_attention(x, reduction=reduction, gate=gate, name=module_name)

    backbone_weights(weights)  # a missing file fails before the build

    # === Functional Model ===
    inputs = keras.Input(shape=tuple(input_shape), name="input_layer")
    features = resnet50_backbone(inputs, after_stage=after_stage)
    outputs = classification_head(features, num_classes, dropout=dropout)
    model = keras.Model(inputs, outputs, name="dalaresnet50")
    return apply_weights(model, weights, imagenet_source=resnet50_imagenet_source(input_shape))
