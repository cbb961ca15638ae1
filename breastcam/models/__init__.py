"""Model zoo: every architecture of the three papers behind one registry."""

from breastcam.models.registry import ModelSpec, build, cam_layer, names, register, spec

__all__ = ["ModelSpec", "build", "cam_layer", "names", "register", "spec"]
