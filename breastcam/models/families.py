"""The model-family modules: importing one runs its ``@register`` decorators.

The registry imports each in turn (:func:`breastcam.models.registry.names`) and stops with an
error naming the family that failed, so a missing dependency never shows as a shorter model
list. A new family is one more entry here.
"""

#: module under ``breastcam.models`` -> what it registers. Order is irrelevant.
FAMILIES: dict[str, str] = {
    "ernet": "ERNet-18/34/50/101 (paper B)",
    "transformers": "ViT-B/16, Swin-B, DINOv2 ViT-B/14 (paper A; needs keras-hub)",
    "resnet": "resnet50, resnet50_frozen10 (papers A, C)",
    "dala": "dalaresnet50 (paper A)",
    "seresnet": "seresnet50 (paper A baseline)",
    "vgg_inception": "vgg16_inception / VGGIN-Net (paper A baseline)",
    "baselines": "densenet121, vgg16, vgg19, mobilenetv2, efficientnetb7",
    "tiny": "tinycnn (smoke runs, distribution tests; no paper)",
}
