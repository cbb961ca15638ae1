"""A fitted normaliser from a run config's ``data.stain`` block.

``{method: macenko, reference: <image or fitted .json>}`` (plus Macenko's parameters, optional):
the one place that turns the config into a normaliser, for training and for the run it leaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from breastcam.errors import ConfigError, MissingFileError
from breastcam.stain.macenko import Macenko

METHODS = ("macenko",)
_KEYS = ("method", "reference", "io", "alpha", "beta", "min_tissue_pixels", "max_stain_cosine",
         "min_max_concentration")


def stain_from_config(stain_cfg: Mapping | None, *, jit_compile: bool = True) -> Macenko | None:
    """A fitted Macenko normaliser, or ``None`` when the config names no stain normalisation.

    ``reference`` is a fitted Macenko ``.json`` (``Macenko.save``) or a reference image, fitted
    here. ``jit_compile`` is an execution option (XLA for the per-pixel passes), not saved.
    """
    if not stain_cfg:
        return None
    if not isinstance(stain_cfg, Mapping):
        raise ConfigError(f"data.stain must be a mapping {{method: macenko, reference: ...}}, got {stain_cfg!r}")
    from breastcam.schema import unknown_key_message

    for key in stain_cfg:
        if key not in _KEYS:
            raise ConfigError(unknown_key_message(f"data.stain.{key}", list(_KEYS)))
    method = str(stain_cfg.get("method", "macenko")).lower()
    if method not in METHODS:
        raise ConfigError(f"data.stain.method={method!r}; available: {', '.join(METHODS)}")
    ref = Path(str(stain_cfg.get("reference", "")))
    if not ref.is_file():
        raise MissingFileError(
            f"stain reference {ref} not found: give a fitted Macenko .json or a reference image "
            "(data.stain.reference)"
        )
    if ref.suffix.lower() == ".json":
        return Macenko.load(ref, jit_compile=jit_compile)
    from breastcam.data.decode import read_image

    params = {k: v for k, v in stain_cfg.items() if k not in ("method", "reference")}
    return Macenko(**params, jit_compile=jit_compile).fit(read_image(ref))
