"""What a report records about how its numbers were made: the package versions.

Versions are read from the installed distributions' metadata, so recording them imports
nothing heavy (no TensorFlow start-up just to print its version). Manifest hashes come from
``breastcam.data.manifest.file_sha256``.
"""

from __future__ import annotations

import platform
from importlib import metadata

# Report name -> distributions that provide it, first installed one wins.
PACKAGES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "sklearn": ("scikit-learn",),
    "imblearn": ("imbalanced-learn",),
    "cv2": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless",
            "opencv-contrib-python"),
    "pandas": ("pandas",),
}


def _version(distributions: tuple[str, ...]) -> str | None:
    for dist in distributions:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def package_versions() -> dict[str, str | None]:
    """Versions of breastcam and the libraries its numbers depend on (``None``: not installed).

    Keys: breastcam, tensorflow, keras, numpy, sklearn, imblearn, cv2, pandas, python.
    """
    import breastcam

    # The source's own version: an editable install's metadata keeps the version of install time.
    versions: dict[str, str | None] = {"breastcam": breastcam.__version__}
    versions.update({name: _version(dists) for name, dists in PACKAGES.items()})
    versions["python"] = platform.python_version()
    return versions

