"""A run is one object: the directory training leaves, and the trained model it serves.

:class:`Run` is a typed view of a run directory (its resolved config, files, class names, split
hash, status); :class:`TrainedModel` is the network together with everything that turns a raw
image into its input — size, fitted stain normaliser, preprocessing — and its class names.
``evaluate``, ``explain``, ``export`` and ``predict`` all go through a ``TrainedModel``, so a
shipped model cannot disagree with its evaluation (keras-hub's Task restores weights, config and
preprocessor together for the same reason).

Sits between ``models/`` and ``train/``: it reads data, stain and models, and nothing above.
``breastcam.runs.files`` (the file names) imports nothing, so the CLI can read it without
TensorFlow; the classes load on first use.
"""

from breastcam.runs import files

__all__ = ["Run", "TrainedModel", "files", "load_trained", "resolve_preprocessing"]


def __getattr__(name: str):
    if name in ("Run", "resolve_preprocessing"):
        from breastcam.runs import run

        return getattr(run, name)
    if name in ("TrainedModel", "load_trained"):
        from breastcam.runs import trained

        return getattr(trained, name)
    raise AttributeError(f"module 'breastcam.runs' has no attribute {name!r}")
