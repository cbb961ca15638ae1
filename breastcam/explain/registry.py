"""CAM methods by name: ``get_cam(method, model, layer="auto", **params)``."""

from __future__ import annotations

import keras

from breastcam.errors import ConfigError
from breastcam.explain.base import BaseCAM
from breastcam.explain.dtgradcam import DTGradCAM
from breastcam.explain.eigencam import EigenCAM
from breastcam.explain.gradcam import GradCAM
from breastcam.explain.gradcampp import GradCAMPlusPlus
from breastcam.explain.scorecam import ScoreCAM

METHODS: dict[str, type[BaseCAM]] = {
    "gradcam": GradCAM,
    "gradcampp": GradCAMPlusPlus,
    "scorecam": ScoreCAM,
    "eigencam": EigenCAM,
    "dtgradcam": DTGradCAM,
}

# Column titles used in figures and tables (paper 001 Fig. 7 / Table XIV).
TITLES: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcampp": "Grad-CAM++",
    "scorecam": "Score-CAM",
    "eigencam": "Eigen-CAM",
    "dtgradcam": "DT Grad-CAM",
}

_ALIASES = {"grad-cam": "gradcam", "grad_cam": "gradcam", "gradcam++": "gradcampp",
            "grad-cam++": "gradcampp", "gradcamplusplus": "gradcampp", "score-cam": "scorecam",
            "eigen-cam": "eigencam", "dt-gradcam": "dtgradcam", "dt_gradcam": "dtgradcam",
            "dt-grad-cam": "dtgradcam"}


def method_names() -> list[str]:
    """Names accepted by :func:`get_cam`."""
    return list(METHODS)


def canonical_method(method: str) -> str:
    """``method`` normalised (``"Grad-CAM++"`` -> ``"gradcampp"``); ``ValueError`` if unknown."""
    key = str(method).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise ConfigError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
    return key


def get_cam(method: str, model: keras.Model, layer: str | None = "auto", **params) -> BaseCAM:
    """A ready CAM object: ``get_cam("dtgradcam", model)(images) -> [B, H, W]`` maps in [0, 1].

    ``layer`` defaults to ``"auto"``: the last spatial layer the class score depends on
    (:mod:`breastcam.explain.layers`; for every registered model it is the registry's CAM layer). ``params`` go to the method (``batch_size`` for all;
    ``top_k``, ``baseline``, ``score`` for Score-CAM; ``version``, ``n_samples``, ``sigma``,
    ``kernel_size``, ``seed`` for DT Grad-CAM).
    """
    cls = METHODS[canonical_method(method)]
    try:
        return cls(model, layer, **params)
    except TypeError as err:
        raise ConfigError(f"bad parameters for CAM method {method!r}: {err}") from None
