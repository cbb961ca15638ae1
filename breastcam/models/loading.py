"""Reading a model file: the one way breastcam loads a ``.keras`` model.

Why one function: a ``.keras`` file only names its layer classes. Keras finds breastcam's custom
layers (ERNet's ``ERWeightedSum``, the transformers' ``TokensToGrid``) and keras-hub's backbones
only if their modules were imported first, and its failures ("Could not locate class ...") name
neither the file nor a way forward. :func:`load_model` imports every model family, loads with
``safe_mode=True`` (a file cannot run code on load) and turns each failure into a
:class:`~breastcam.errors.ModelFileError` that names the file.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import keras

from breastcam.errors import MissingFileError, ModelFileError

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_KNOWN_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"BM": "a BMP image",
    b"GIF8": "a GIF image",
}


def load_model(path: str | os.PathLike, *, compile: bool = False) -> keras.Model:
    """The model saved in the ``.keras`` file ``path``, with every breastcam layer known.

    ``compile=False`` (the default) skips restoring the optimizer and loss: inference, CAMs and
    export need neither. Raises :class:`ModelFileError` for a file that is not a ``.keras``
    archive, uses a layer class no breastcam family defines, or holds a ``Lambda`` layer
    (refused by ``safe_mode``); ``FileNotFoundError`` when ``path`` does not exist.
    """
    from breastcam.models import registry

    path = Path(path)
    _check_keras_archive(path)
    registry.names()  # imports every family, which registers their custom layers (or raises)
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - Keras raises TypeError/ValueError/KeyError/OSError...
        raise ModelFileError(_explain_load_failure(path, err)) from err


def _check_keras_archive(path: Path) -> None:
    """Refuse, with what the file is instead, anything Keras would not read as a ``.keras`` file."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            raise ModelFileError(f"model file {path} is an exported SavedModel directory, not a .keras file. "
                                 f"Way forward: predict with `breastcam predict {path} IMAGES`, or give the "
                                 "run folder (breastcam predict and explain take it as it is).")
        raise ModelFileError(f"model file {path} is a directory, not a .keras file. Way forward: give "
                             "the .keras file in it, or the run folder to breastcam predict / explain.")
    if not path.is_file():
        raise MissingFileError(f"model file {path} not found: give a .keras file, or a run folder to "
                               "breastcam predict / explain")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_ZIP_MAGIC) and path.suffix == ".keras":
        return
    advice = "give a run folder's checkpoint or a file written by keras.Model.save"
    if head.startswith(_ZIP_MAGIC):
        what = "a zip archive without the .keras suffix Keras requires"
        advice = "rename it to *.keras if keras.Model.save wrote it"
    elif head.startswith(_HDF5_MAGIC) and path.name.endswith(".weights.h5"):
        what = "an HDF5 weights file (weights only, no architecture)"
        advice = (f"build the model with breastcam.models.build(name, ..., weights='{path}'), or "
                  "set model.weights in a run config")
    elif head.startswith(_HDF5_MAGIC):
        what = "a legacy HDF5 (.h5) model"
        advice = "load it with Keras and save it again as .keras (safe_mode cannot be enforced on .h5)"
    elif not head:
        what = "empty (0 bytes)"
    else:
        what = next((kind for magic, kind in _KNOWN_MAGIC.items() if head.startswith(magic)), None)
        if what is None:
            what = "a text file" if _looks_like_text(path) else f"binary data starting with {head[:4]!r}"
    raise ModelFileError(f"model file {path} is {what}, not a .keras model (a zip archive). Way forward: {advice}.")


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as fh:
        chunk = fh.read(512)
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in chunk


def _explain_load_failure(path: Path, err: Exception) -> str:
    text = str(err)
    missing = re.search(r"Could not locate class '([^']+)'", text)
    if missing:
        registered = re.search(r"'registered_name': '([^']+)'", text[missing.end():])
        saved_as = f" (saved as {registered.group(1)!r})" if registered else ""
        ours = sorted(k.split(">", 1)[1] for k in keras.saving.get_custom_objects() if k.startswith("breastcam>"))
        return (
            f"model file {path} uses the layer class {missing.group(1)!r}{saved_as}, which is not a "
            f"breastcam layer ({', '.join(ours)}) nor one of Keras or keras-hub. The file was made by "
            "other code: load it where that class is defined, or rebuild the model with "
            "breastcam.models.build and load its weights."
        )
    if "Lambda" in text and "safe_mode" in text:
        return (
            f"model file {path} contains a Lambda layer (Python code stored in the file). breastcam "
            "loads models with safe_mode=True, which refuses Lambda layers because loading them runs "
            "arbitrary code; no breastcam model has one, so the file was not made by breastcam. "
            "Rebuild the model from registered layers (breastcam.models.build)."
        )
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"model file {path} could not be loaded as a Keras model: {type(err).__name__}: {first[:500]}"


def load_weights_file(model: keras.Model, path: str | os.PathLike, **kwargs) -> keras.Model:
    """``model.load_weights(path)``; a file of another architecture -> :class:`ModelFileError`.

    Keras' own message lists the variables' values; this one names the file, the model and
    the first mismatching variable's shapes.
    """
    try:
        with warnings.catch_warnings():  # Keras warns once per layer of a file that does not fit
            warnings.filterwarnings("ignore", message="Skipping nested container")
            model.load_weights(str(path), **kwargs)
    except (ValueError, KeyError, OSError) as err:
        text = str(err)
        shapes = re.search(r"Target variable: <Variable path=([^,]+)", text)
        sizes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
        detail = (f"variable {shapes.group(1)} has shape {sizes.group(1)} in the model but "
                  f"{sizes.group(2)} in the file" if shapes and sizes else
                  f"{type(err).__name__}: {(text.strip().splitlines() or [''])[0][:300]}")
        raise ModelFileError(
            f"weights file {path} does not fit model {model.name!r} ({detail}): it was saved from "
            "another architecture, number of classes or input size. Use a weights file saved from "
            "this same model (same name, options and num_classes)."
        ) from err
    return model
