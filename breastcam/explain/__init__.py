"""Batched CAM engine (one base class), overlays, localisation and faithfulness metrics.

``get_cam(method, model, layer=None, **params)(images, targets=None)`` returns ``[B, H, W]``
float32 maps in ``[0, 1]`` at input resolution for preprocessed ``images``; methods:
``gradcam``, ``gradcampp``, ``scorecam``, ``eigencam``, ``dtgradcam``.
"""

from breastcam.explain.base import BaseCAM
from breastcam.explain.dtgradcam import DTGradCAM
from breastcam.explain.eigencam import EigenCAM
from breastcam.explain.faithfulness import deletion_insertion, to_frame
from breastcam.explain.gradcam import GradCAM
from breastcam.explain.gradcampp import GradCAMPlusPlus
from breastcam.explain.metrics import mask_metrics, mask_metrics_batch
from breastcam.explain.overlay import heatmap, overlay, save_rgb
from breastcam.explain.registry import METHODS, TITLES, canonical_method, get_cam, method_names
from breastcam.explain.scorecam import ScoreCAM

__all__ = [
    "BaseCAM",
    "DTGradCAM",
    "EigenCAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "METHODS",
    "ScoreCAM",
    "TITLES",
    "canonical_method",
    "deletion_insertion",
    "get_cam",
    "heatmap",
    "mask_metrics",
    "mask_metrics_batch",
    "method_names",
    "overlay",
    "save_rgb",
    "to_frame",
]
