"""Where breastcam's data folders are: the one place every reader of ``experiments/`` (and
``data_manifests/``) asks.

The repository keeps ``experiments/`` (and ``data_manifests/``) at the top level, beside the
``breastcam`` package. A wheel ships them *inside* the package, as ``breastcam/experiments/``
(``setup.py`` maps the top-level folder onto the package ``breastcam.experiments``), so the same
files are found three ways:

1. ``$BREASTCAM_EXPERIMENTS`` / ``$BREASTCAM_DATA_MANIFESTS``: an explicit override;
2. installed from a wheel: ``importlib.resources.files("breastcam") / "experiments"``;
3. a source checkout (editable install or ``PYTHONPATH``): the folder beside the package.

The packaged copy is looked up through the regular ``breastcam`` package, not by importing
``breastcam.experiments``: that name does not exist in a plain checkout, an editable install's
import hook cannot import it (a folder without ``__init__.py``), and that hook would point at the
checkout the environment was installed from, which need not be the one being run.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import breastcam
from breastcam.errors import ConfigError

# folder name -> environment variable that overrides it
_OVERRIDES = {"experiments": "BREASTCAM_EXPERIMENTS", "data_manifests": "BREASTCAM_DATA_MANIFESTS"}


def checkout_root() -> Path | None:
    """The source checkout breastcam runs from, or ``None`` when it runs from an installed wheel.

    A checkout is the folder above the package that holds the project's ``setup.cfg``.
    """
    root = Path(breastcam.__file__).resolve().parents[1]
    return root if (root / "setup.cfg").is_file() else None


def _packaged(name: str) -> Path | None:
    """``breastcam/<name>`` as installed from a wheel, or ``None`` when it is not there."""
    found = resources.files("breastcam").joinpath(name)
    # Wheels are unpacked on install: the package is a real folder and its files are Paths.
    return Path(str(found)) if isinstance(found, Path) and found.is_dir() else None


def data_folder(name: str) -> Path:
    """One of breastcam's top-level data folders (``experiments``, ``data_manifests``), found as
    the module docstring says; :class:`ConfigError` naming the places looked at."""
    if name not in _OVERRIDES:
        raise ValueError(f"unknown data folder {name!r}; known: {sorted(_OVERRIDES)}")
    override = os.environ.get(_OVERRIDES[name])
    if override:
        path = Path(override)
        if not path.is_dir():
            raise ConfigError(f"{_OVERRIDES[name]}={override} is not a folder: point it at a copy of "
                              f"the repository's {name}/ folder, or unset it")
        return path
    packaged = _packaged(name)
    if packaged is not None:
        return packaged
    root = checkout_root()
    if root is not None and (root / name).is_dir():
        return root / name
    package = Path(breastcam.__file__).resolve().parent
    raise ConfigError(
        f"breastcam's {name}/ folder is neither in the installed package ({package / name}) nor "
        f"beside it in a source checkout: reinstall breastcam (pip install .), or set "
        f"{_OVERRIDES[name]} to a copy of the repository's {name}/ folder")


def experiments_dir() -> Path:
    """The ``experiments/`` folder: experiment YAMLs, published CSVs, per-paper scripts."""
    return data_folder("experiments")


def data_manifests_dir() -> Path:
    """The committed ``data_manifests/`` folder (reference manifests and splits)."""
    return data_folder("data_manifests")
