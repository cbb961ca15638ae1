"""Imports every model-family module so that their ``@register`` decorators run."""

# Each import registers that family's builders; order is irrelevant.
from breastcam.models import ernet  # noqa: F401  ERNet-18/34/50/101 (paper B)
from breastcam.models import transformers  # noqa: F401  ViT-B/16, Swin-B, DINOv2 ViT-B/14 (paper A)
from breastcam.models import resnet  # noqa: F401  resnet50, resnet50_frozen10 (papers A, C)
from breastcam.models import dala  # noqa: F401  dalaresnet50 (paper A)
from breastcam.models import seresnet  # noqa: F401  seresnet50 (paper A baseline)
from breastcam.models import vgg_inception  # noqa: F401  vgg16_inception / VGGIN-Net (paper A baseline)
from breastcam.models import baselines  # noqa: F401  densenet121, vgg16, vgg19, mobilenetv2, efficientnetb7
from breastcam.models import tiny  # noqa: F401  tinycnn (smoke runs, distribution tests; no paper)
