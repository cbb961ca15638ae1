"""Data layer: dataset manifests, protocol splits, image decoding and the tf.data pipeline.

Manifests, splits and validation import without TensorFlow; ``make_dataset``, ``read_image``,
``BadImageError`` and ``make_synthetic`` are loaded on first use (module ``__getattr__``), so
``import breastcam.data`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from breastcam.data.loaders import DATASETS, load_manifest, mias_lesion_mask
from breastcam.data.manifest import REQUIRED_COLUMNS, file_sha256, read_manifest, write_manifest
from breastcam.data.splits import PROTOCOLS, fold_view, make_split, write_split
from breastcam.data.validate import Problem, format_problems, validate_manifest

# name -> module that defines it, imported lazily (these modules import TensorFlow / OpenCV).
_LAZY = {
    "make_dataset": "breastcam.data.pipeline",
    "read_image": "breastcam.data.decode",
    "BadImageError": "breastcam.data.decode",
    "SUPPORTED_EXTENSIONS": "breastcam.data.decode",
    "make_synthetic": "breastcam.data.synthetic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'breastcam.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DATASETS", "PROTOCOLS", "REQUIRED_COLUMNS", "Problem", "file_sha256", "fold_view",
    "format_problems", "load_manifest", "make_split", "mias_lesion_mask", "read_manifest",
    "validate_manifest", "write_manifest", "write_split", *_LAZY,
]
