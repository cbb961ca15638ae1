"""Initial weights for the model zoo: ImageNet through Keras, a local file, or none.

Every builder takes ``weights`` in the same three forms:

- ``None``: random initialisation;
- ``"imagenet"``: the weights Keras downloads and caches in ``~/.keras/models/`` (offline this
  fails fast with :class:`WeightsUnavailableError`, never hangs);
- a path to a weights file (``.weights.h5`` / ``.keras`` saved by Keras 3 from a model of the
  same architecture, or a legacy ``.h5`` such as Keras' cached ImageNet files, loaded by layer
  name).

Models built by hand (DALAResNet50, SE-ResNet50, ERNet, VGGIN-Net) keep the Keras application
layer names, so ImageNet weights are copied into them by name from the application:
:func:`apply_weights` with ``imagenet_source=`` does that.
"""

from __future__ import annotations

import contextlib
import os
import socket
import traceback
import urllib.error
from pathlib import Path
from typing import Callable

import keras

from breastcam.errors import BreastcamError, MissingFileError, ModelFileError
from breastcam.models.loading import load_weights_file

#: Seconds one network operation of a weights download may block before it counts as failed.
DOWNLOAD_TIMEOUT_S = 10.0

# Frames that mark an exception as raised while fetching or reading a weights file (and not
# while building the graph, whose errors must surface unchanged).
_FETCH_FRAMES = {
    "get_file",
    "urlretrieve",
    "urlopen",
    "load_weights",
    "load_weights_only",
    "load_weights_from_hdf5_group",
    "load_weights_from_hdf5_group_by_name",
}


class WeightsUnavailableError(BreastcamError, RuntimeError):
    """ImageNet weights could not be downloaded or loaded (typically: no network)."""

    def __init__(self, what: str, reason: BaseException | str):
        self.reason = reason
        reason_text = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason
        super().__init__(
            f"ImageNet weights for {what} could not be downloaded or loaded ({reason_text}). "
            "Ways forward: build with weights=None (random initialisation), or pass "
            'weights="/path/to/file.weights.h5" (a local weights file of this model, or Keras\' '
            "legacy ImageNet .h5 file, loaded by layer name). Copying the file Keras would "
            "download into ~/.keras/models/ (its cache) also works offline."
        )


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _raised_while_fetching(err: BaseException) -> bool:
    if isinstance(err, (urllib.error.URLError, socket.timeout, ConnectionError)):
        return True
    if "URL fetch failure" in str(err):  # keras.utils.get_file wraps URLError in Exception
        return True
    frames = traceback.extract_tb(err.__traceback__)
    return any(frame.name in _FETCH_FRAMES for frame in frames)


def load_application(
    app_fn: Callable[..., keras.Model],
    *,
    input_shape: tuple[int, int, int],
    weights: str | None,
    **kwargs,
) -> keras.Model:
    """Call a ``keras.applications`` constructor, with ``include_top=False`` unless overridden.

    ``weights`` is passed through (``None``, ``"imagenet"`` or a file path, which Keras itself
    loads). When the ImageNet download or load fails the error is a
    :class:`WeightsUnavailableError` naming the ways forward; the download's sockets time out
    after :data:`DOWNLOAD_TIMEOUT_S` seconds so an offline machine fails within seconds.
    """
    kwargs.setdefault("include_top", False)
    if weights is None:
        return app_fn(weights=None, input_shape=tuple(input_shape), **kwargs)
    if weights != "imagenet":
        _check_weights_path(weights)
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return app_fn(weights=weights, input_shape=tuple(input_shape), **kwargs)
    except Exception as err:  # noqa: BLE001 - keras.utils.get_file raises bare Exception
        if weights == "imagenet" and _raised_while_fetching(err):
            raise WeightsUnavailableError(getattr(app_fn, "__name__", str(app_fn)), err) from err
        raise


def copy_weights_by_name(src: keras.Model, dst: keras.Model) -> list[str]:
    """Copy the weights of every layer of ``dst`` that ``src`` has under the same name.

    A layer is copied only when all its weight shapes match; layers that differ (a new head,
    a resized kernel) keep their own weights. Returns the names of the copied layers; raises
    ``ValueError`` when nothing matched (the two models share no layer names).
    """
    src_layers = {layer.name: layer for layer in src.layers}
    copied = []
    for layer in dst.layers:
        other = src_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        theirs = other.get_weights()
        if len(theirs) != len(layer.weights) or any(
            tuple(w.shape) != tuple(v.shape) for w, v in zip(layer.weights, theirs)
        ):
            continue
        layer.set_weights(theirs)
        copied.append(layer.name)
    if not copied:
        raise ModelFileError(
            f"no weights copied from {src.name!r} to {dst.name!r}: no layer has the same name "
            "and weight shapes in both models"
        )
    return copied


def _check_weights_path(weights) -> Path:
    if not isinstance(weights, (str, os.PathLike)):
        raise ModelFileError(
            f"weights must be None, 'imagenet' or a path to a weights file, got {weights!r}"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise MissingFileError(
            f"weights file not found: {str(path)!r}; weights must be None (random "
            "initialisation), 'imagenet', or the path of an existing .weights.h5 / .keras / "
            ".h5 file"
        )
    return path


def backbone_weights(weights) -> str | None:
    """What to pass to a ``keras.applications`` backbone when the full model gets ``weights``.

    ``"imagenet"`` stays ``"imagenet"``; ``None`` and file paths give ``None`` (a weights file
    belongs to the whole model and is loaded by :func:`apply_weights` once the model is built).
    Checks ``weights`` first, so a missing file fails before an expensive build.
    """
    if weights is None or (isinstance(weights, str) and weights == "imagenet"):
        return weights
    _check_weights_path(weights)
    return None


def file_weights(weights):
    """``weights`` if it is a file path, else ``None`` (the counterpart of :func:`backbone_weights`)."""
    return None if weights is None or (isinstance(weights, str) and weights == "imagenet") else weights


def apply_weights(
    model: keras.Model,
    weights: str | os.PathLike | None,
    *,
    imagenet_source: Callable[[], keras.Model] | None = None,
) -> keras.Model:
    """Initialise ``model`` in place from ``weights`` and return it.

    - ``None``: the model as built;
    - ``"imagenet"``: ``imagenet_source()`` (a zero-argument callable returning a
      ``keras.applications`` backbone with ImageNet weights, usually through
      :func:`load_application`) is built, and its weights are copied by layer name;
    - a path: ``.weights.h5`` / ``.keras`` files load strictly (same architecture);
      legacy ``.h5`` files (such as Keras' cached ImageNet ``*_notop.h5``) load by layer name.
    """
    if weights is None:
        return model
    if isinstance(weights, str) and weights == "imagenet":
        if imagenet_source is None:
            raise ModelFileError(
                f"model {model.name!r} has no ImageNet weights; use weights=None or a path"
            )
        source = imagenet_source()
        copy_weights_by_name(source, model)
        return model
    path = _check_weights_path(weights)
    legacy_h5 = path.suffix in (".h5", ".hdf5") and not path.name.endswith(".weights.h5")
    # Keras' cached ImageNet files (e.g. resnet50_..._notop.h5) load by layer name: layers whose
    # shapes differ (a new head) keep their own weights. Keras 3 files load strictly.
    by_name = {"by_name": True, "skip_mismatch": True} if legacy_h5 else {}
    return load_weights_file(model, path, **by_name)
