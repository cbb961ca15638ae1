"""Imports every model-family module so that their ``@register`` decorators run."""

# Each import registers that family's builders; order is irrelevant.
from breastcam.models import ernet  # noqa: F401  ERNet-18/34/50/101 (paper B)
from breastcam.models import transformers  # noqa: F401  ViT-B/16, Swin-B, DINOv2 ViT-B/14 (paper A)
