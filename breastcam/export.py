"""Ship a trained model with its explanation: SavedModel / ``.keras`` export, and prediction.

The SavedModel takes raw pixels (float32 ``[B, H, W, 3]`` in 0-255, at the model's input size)
and applies the run's preprocessing itself, so a consumer needs nothing from breastcam:

* ``serving_default(images) -> {probabilities}``
* ``explain(images) -> {probabilities, cam, threshold, target}`` — DT Grad-CAM v2 of the
  predicted class, computed in the graph (:mod:`breastcam.explain.dtgradcam_graph`).

Beside it, ``breastcam.json`` records class names, preprocessing, input size and CAM settings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from breastcam.console import progress
from breastcam.errors import MissingFileError, ModelFileError
from breastcam.data.decode import read_image
from breastcam.data.pipeline import resize_image
from breastcam.data.preprocess import get_preprocessor
from breastcam.errors import RunStateError
from breastcam.explain import get_cam
from breastcam.explain.dtgradcam_graph import dtgradcam_graph
from breastcam.models import load_model

METADATA = "breastcam.json"


def run_metadata(run_dir: str | Path) -> dict:
    """Class names and preprocessing of a finished run (``run_info.json``)."""
    info = Path(run_dir) / "run_info.json"
    if not info.exists():
        raise MissingFileError(f"{info} not found: is {run_dir} a breastcam run directory?")
    return json.loads(info.read_text())


def export_model(
    model: keras.Model,
    out: str | Path,
    *,
    class_names: Sequence[str],
    preprocessing: str,
    format: str = "savedmodel",
    cam_params: dict | None = None,
    force: bool = False,
) -> Path:
    """Export ``model`` to ``out`` (a directory for SavedModel, a ``.keras`` file otherwise).

    An existing ``out`` is refused (:class:`RunStateError`) unless ``force``; even then only a
    previous export is replaced, never an unrelated folder.
    """
    out = _destination(out, format)
    in_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    cam_params = {"version": 2, "n_samples": 8, "sigma": 0.1, "kernel_size": None, "seed": 0,
                  "average": "raw",  # paper 001 eq. 8
                  **(cam_params or {})}
    meta = {
        "class_names": list(class_names),
        "preprocessing": preprocessing,
        "input_shape": list(in_shape),
        "input": "float32 RGB pixels in [0, 255] at input_shape",
        "explain": {"method": "dtgradcam", **cam_params},
        "model_name": model.name,
    }
    if format == "keras":
        _check_destination(out, force, directory=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(out)
        out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        return out
    if format != "savedmodel":
        raise ModelFileError(f"format={format!r}; choose savedmodel or keras")
    _check_destination(out, force, directory=True)

    preprocess = get_preprocessor(preprocessing)
    cam = get_cam("dtgradcam", model, **cam_params)
    explain_fn = dtgradcam_graph(cam)
    spec = tf.TensorSpec((None, *in_shape), tf.float32, name="images")

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(cam.probe)
    archive.add_endpoint(
        "serving_default",
        lambda images: {"probabilities": model(preprocess(images), training=False)},
        input_signature=[spec],
    )
    archive.add_endpoint("explain", lambda images: explain_fn(preprocess(images)), input_signature=[spec])
    # Written beside ``out`` first, so a failed export never destroys the previous one.
    staging = out.with_name(f".{out.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    archive.write_out(str(staging), verbose=False)
    (staging / METADATA).write_text(json.dumps(meta, indent=2))
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def _check_destination(out: Path, force: bool, *, directory: bool) -> None:
    """Refuse to overwrite ``out`` unless ``force`` and it is a previous breastcam export."""
    if not out.exists():
        return
    if not force:
        raise RunStateError(
            f"export destination {out} already exists; pass --force (force=True) to replace it, "
            "or choose another --out"
        )
    if directory:
        ours = out.is_dir() and ((out / METADATA).is_file() or (out / "saved_model.pb").is_file()
                                 or not any(out.iterdir()))
    else:
        ours = out.is_file() and out.suffix == ".keras"
    if not ours:
        raise RunStateError(
            f"export destination {out} exists and is not a breastcam "
            f"{'SavedModel export' if directory else '.keras file'}: --force replaces only a "
            "previous export; choose another --out"
        )


def _destination(out: str | Path, format: str) -> Path:
    out = Path(out)
    return out.with_suffix(".keras") if format == "keras" and out.suffix != ".keras" else out


def export_run(run_dir: str | Path, format: str = "savedmodel", out: str | Path | None = None,
               cam_params: dict | None = None, force: bool = False) -> Path:
    """Export a run's best checkpoint; default destination ``<run_dir>/export/``.

    An existing destination is refused unless ``force`` (see :func:`export_model`).
    """
    run_dir = Path(run_dir)
    best = run_dir / "best.keras"
    if not best.exists():
        raise MissingFileError(f"{best} not found: train the run first (breastcam train)")
    meta = run_metadata(run_dir)
    default = run_dir / "export" / ("savedmodel" if format == "savedmodel" else "model.keras")
    out = _destination(out or default, format)
    _check_destination(out, force, directory=format != "keras")  # before the slow load
    model = load_model(best)
    return export_model(model, out, class_names=meta["class_names"],
                        preprocessing=meta["preprocessing"], format=format, cam_params=cam_params,
                        force=force)


class Predictor:
    """Predicts (and explains) raw images with an exported SavedModel or a ``.keras`` file."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if path.is_dir():
            meta_path = path / METADATA
            self.saved = tf.saved_model.load(str(path))
            self.model = None
        elif path.suffix == ".keras":
            meta_path = path.with_suffix(".json")
            self.model = load_model(path)
            self.saved = None
        else:
            raise MissingFileError(f"{path}: expected an exported SavedModel directory or a .keras file")
        if not meta_path.exists():
            raise MissingFileError(f"{meta_path} not found: export the model with `breastcam export`")
        self.meta = json.loads(meta_path.read_text())
        self.size = tuple(self.meta["input_shape"][:2])

    def load(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Decode (any supported format) and resize to the model's input size: float32 0-255."""
        images = [resize_image(tf.constant(read_image(p)), self.size)
                  for p in progress(paths, desc="read images", unit="img", min_items=16)]
        return tf.cast(tf.stack(images), tf.float32).numpy()

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        if self.saved is not None:
            out = self.saved.signatures["serving_default"](images=tf.constant(pixels))
            return out["probabilities"].numpy()
        x = get_preprocessor(self.meta["preprocessing"])(tf.constant(pixels))
        return self.model.predict(x, verbose=0)

    def explain(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        if self.saved is not None:
            out = self.saved.signatures["explain"](images=tf.constant(pixels))
            return {k: v.numpy() for k, v in out.items()}
        params = {k: v for k, v in self.meta["explain"].items() if k != "method"}
        cam = get_cam("dtgradcam", self.model, **params)
        x = get_preprocessor(self.meta["preprocessing"])(tf.constant(pixels)).numpy()
        maps = cam(x)
        return {"cam": maps, "threshold": cam.last_thresholds_, "target": cam.last_targets_,
                "probabilities": cam.last_probabilities_}


def predict_images(model_path: str | Path, images: Sequence[str | Path], *, explain: bool = False,
                   out_dir: str | Path | None = None) -> pd.DataFrame:
    """Class probabilities for image files; with ``explain``, DT Grad-CAM overlays in ``out_dir``."""
    from breastcam.explain.overlay import overlay, save_rgb

    pred = Predictor(model_path)
    names = pred.meta["class_names"]
    pixels = pred.load(images)
    result = pred.explain(pixels) if explain else {"probabilities": pred.predict(pixels)}
    probs = result["probabilities"]
    df = pd.DataFrame({"path": [str(p) for p in images],
                       "prediction": [names[i] for i in probs.argmax(1)]})
    for i, name in enumerate(names):
        df[f"prob_{name}"] = probs[:, i]
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        df.to_csv(out / "predictions.csv", index=False)
        if explain:
            for path, cam in zip(images, result["cam"]):
                _, _, over = overlay(read_image(path), cam)
                save_rgb(out / f"{Path(path).stem}_overlay.png", over)
                np.save(out / f"{Path(path).stem}_dtgradcam.npy", cam)
    return df
