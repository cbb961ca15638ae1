"""Ship a trained model with its explanation: SavedModel, ``.keras``, ONNX, LiteRT; and predict.

Everything is written from the run's :class:`~breastcam.runs.TrainedModel`, and every written
file is run once at export time on the run's test images and compared with the TrainedModel
(the path ``breastcam evaluate`` takes): an export that would disagree with its evaluation is
refused, not shipped.

* SavedModel: takes raw RGB pixels (float32 ``[B, H, W, 3]`` in 0-255, any size: resized in the
  graph as training resized them) and applies the run's stain normaliser and preprocessing itself,
  so a consumer needs nothing from breastcam. ``serving_default(images) -> {probabilities,
  uncertainty[, prediction_set]}`` (calibrated when ``breastcam calibrate`` fitted the run);
  ``explain(images) -> {probabilities, cam, threshold, target}`` (DT Grad-CAM v2 of the predicted
  class, in the graph: :mod:`breastcam.explain.dtgradcam_graph`).
* ``.keras``: the network, with ``<name>.json`` beside it (classes, size, preprocessing, fitted
  stain reference) so :func:`breastcam.runs.load_trained` restores the whole pipeline.
* ONNX / LiteRT (``pip install breastcam[export]``): pixels already resized to the model's input
  size (the antialiased resize op has no ONNX / LiteRT kernel); the stain normaliser is inside
  when the converter takes its ops, else the export says which op it refused and the file takes
  stain-normalised pixels (the card and ``breastcam.json`` say which).

Beside each export: ``breastcam.json`` (machine-readable metadata) and the model card
(``model_card.md`` / ``model_card.json``, :mod:`breastcam.report.model_card`).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from breastcam.console import progress
from breastcam.data.decode import read_image
from breastcam.errors import MissingFileError, ModelFileError, RunStateError, UsageError
from breastcam.explain import get_cam
from breastcam.explain.dtgradcam_graph import dtgradcam_graph
from breastcam.models import load_model
from breastcam.runs import Run, TrainedModel, files, load_trained

METADATA = "breastcam.json"
FORMATS = files.EXPORT_FORMATS
TOLERANCE = {"savedmodel": 1e-5, "keras": 1e-5, "onnx": 1e-4, "litert": 1e-4}
_FILE_NAMES = {"savedmodel": "savedmodel", "keras": "model.keras", "onnx": "model.onnx", "litert": "model.tflite"}
_VERIFY_IMAGES = 8  # test images each export is run on at export time
DEFAULT_CAM = {"version": 2, "n_samples": 8, "sigma": 0.1, "kernel_size": None, "seed": 0,
               "average": "raw"}  # paper 001 eq. 8


# === Writing ===

def export_model(model: keras.Model, out: str | Path, *, class_names: Sequence[str], preprocessing: str,
                 format: str = "savedmodel", cam_params: dict | None = None, force: bool = False) -> Path:
    """Export a bare Keras ``model`` (no run): its pipeline is resize + ``preprocessing``."""
    trained = TrainedModel.from_network(model, preprocessing=preprocessing, class_names=class_names)
    return export_trained(trained, out, format=format, cam_params=cam_params, force=force)


def export_trained(trained: TrainedModel, out: str | Path, *, format: str = "savedmodel",
                   cam_params: dict | None = None, force: bool = False,
                   check_pixels: np.ndarray | None = None, card: dict | None = None) -> Path:
    """Write ``trained`` to ``out`` in ``format``, run it on ``check_pixels`` and compare.

    An existing ``out`` is refused (:class:`RunStateError`) unless ``force``; even then only a
    previous export is replaced, never an unrelated folder or file. ``check_pixels`` (uint8
    ``[N, h, w, 3]`` at the model size; default: seeded random pixels) are what the written file
    is verified on; ``card`` (from :func:`breastcam.report.model_card.model_card`) is completed
    with the export's facts and written beside it.
    """
    if format not in FORMATS:
        raise UsageError(f"format={format!r}; choose one of {', '.join(FORMATS)}")
    out = _destination(out, format)
    _check_destination(out, force, directory=format == "savedmodel")
    cam_params = {**DEFAULT_CAM, **(cam_params or {})}
    if check_pixels is None:
        check_pixels = np.random.default_rng(0).integers(0, 256, (4, *trained.image_size, 3), dtype=np.uint8)
    expected = trained.predict(check_pixels)
    meta = {**trained.metadata(), "format": format, "explain": {"method": "dtgradcam", **cam_params}}
    # Written beside ``out`` first (same suffix), so a failed export never destroys the previous one.
    staging = out.with_name(f".{out.stem}.partial{out.suffix}")
    _remove(staging)
    notes: list[str] = []
    if format == "savedmodel":
        _write_savedmodel(trained, staging, cam_params)
        meta["input"] = "float32 RGB pixels in [0, 255], [B, H, W, 3], any size (resized in the graph)"
        got = Predictor(staging, metadata=meta).predict(check_pixels.astype(np.float32))
    elif format == "keras":
        staging.parent.mkdir(parents=True, exist_ok=True)
        trained.network.save(staging)
        meta["input"] = "the network's input: pixels resized, stain-normalised and preprocessed (see 'preprocessing', 'stain')"
        got = TrainedModel.from_metadata(load_model(staging), meta).predict(check_pixels)
    else:
        converted, notes = _convert(trained, staging, format)
        meta["input"] = converted["input"]
        meta["stain_in_file"] = converted["stain_in_file"]
        pixels = check_pixels if converted["stain_in_file"] or trained.stain is None else \
            trained.stain.transform(check_pixels).numpy()
        got = run_converted(staging, format, pixels.astype(np.float32))
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= TOLERANCE[format]:
        _remove(staging)
        raise ModelFileError(
            f"the {format} export of {trained.source or trained.model_name} gives probabilities "
            f"{diff:.2e} away from the model it was written from (tolerance {TOLERANCE[format]:.0e}); "
            "nothing was written. Report this with --debug output."
        )
    meta["verified"] = {"images": int(len(check_pixels)), "max_abs_difference": diff,
                        "tolerance": TOLERANCE[format], "against": "breastcam.runs.TrainedModel (the evaluate path)"}
    meta["notes"] = notes
    for note in notes:
        print(f"breastcam export: {note}")
    if out.exists():
        _remove(out)
    staging.rename(out)
    meta_path = out / METADATA if out.is_dir() else out.with_suffix(".json")
    meta_path.write_text(json.dumps(meta, indent=2))
    if card is not None:
        from breastcam.report.model_card import write_model_card

        write_model_card({**card, "export": meta}, out if out.is_dir() else out.parent)
    return out


def _write_savedmodel(trained: TrainedModel, path: Path, cam_params: dict) -> None:
    cam = get_cam("dtgradcam", trained.network, **cam_params)
    explain_fn = dtgradcam_graph(cam)
    spec = tf.TensorSpec((None, None, None, 3), tf.float32, name="images")
    archive = keras.export.ExportArchive()
    archive.track(trained.network)
    archive.track(cam.probe)
    archive.add_endpoint("serving_default", trained.outputs, input_signature=[spec])
    archive.add_endpoint("explain", lambda images: explain_fn(trained.prepare(trained.resize(images))),
                         input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def _resized_archive(trained: TrainedModel, path: Path, *, stain: bool) -> None:
    """A SavedModel whose one signature takes pixels at the model size (for the converters)."""
    net = trained.network
    spec = tf.TensorSpec((None, *trained.image_size, 3), tf.float32, name="images")
    if stain:
        fn = lambda images: {"probabilities": trained.calibrate(net(trained.prepare(images), training=False))}  # noqa: E731
    else:
        from breastcam.data.preprocess import get_preprocessor

        pre = get_preprocessor(trained.preprocessing)
        fn = lambda images: {"probabilities": trained.calibrate(net(pre(images), training=False))}  # noqa: E731
    archive = keras.export.ExportArchive()
    archive.track(net)
    archive.add_endpoint("serve", fn, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def _convert(trained: TrainedModel, path: Path, format: str) -> tuple[dict, list[str]]:
    """Convert to ONNX or LiteRT, with the stain normaliser inside when the converter takes it."""
    size = "x".join(map(str, trained.image_size))
    notes: list[str] = []
    attempts = [True, False] if trained.stain is not None else [False]
    refused = None
    for with_stain in attempts:
        scratch = path.with_name(path.name + ".sm")
        _remove(scratch)
        try:
            _resized_archive(trained, scratch, stain=with_stain)
            _convert_savedmodel(scratch, path, format)
        except _UnsupportedOps as err:
            if not with_stain:
                raise ModelFileError(f"{format} export of {trained.model_name}: the converter cannot "
                                     f"take op(s) {', '.join(err.ops)}; export as savedmodel or keras") from None
            refused = err.ops
            continue
        finally:
            _remove(scratch)
        if refused:
            notes.append(f"{format}: the stain normaliser is not in the file (the converter cannot take "
                         f"{', '.join(refused)}); the file takes Macenko-normalised pixels")
        stain_in = bool(with_stain and trained.stain is not None)
        what = "Macenko-normalised " if trained.stain is not None and not stain_in else ""
        return {"input": f"float32 {what}RGB pixels in [0, 255], [B, {size}, 3]: resize first (antialiased "
                         "bilinear, rounded to whole grey levels); preprocessing is inside",
                "stain_in_file": stain_in}, notes
    raise AssertionError("unreachable")


class _UnsupportedOps(Exception):
    def __init__(self, ops: list[str]):
        super().__init__(", ".join(ops))
        self.ops = ops


def _convert_savedmodel(saved: Path, path: Path, format: str) -> None:
    if format == "onnx":
        try:
            import onnx
            import tf2onnx
        except ImportError as err:
            raise UsageError(f"ONNX export needs tf2onnx and onnxruntime: pip install 'breastcam[export]' ({err})") from None
        loaded = tf.saved_model.load(str(saved))
        fn = loaded.signatures["serve"]
        spec = [tf.TensorSpec(t.shape, t.dtype, name="images") for t in fn.structured_input_signature[1].values()]
        import logging

        logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)  # an unsupported op is said below, once
        proto, _ = tf2onnx.convert.from_function(tf.function(lambda images: fn(images=images)),
                                                 input_signature=spec, opset=17)
        known = _onnx_ops_of_default_domain()
        unsupported = sorted({n.op_type for n in proto.graph.node if n.domain in ("", "ai.onnx") and n.op_type not in known})
        if unsupported:
            raise _UnsupportedOps(unsupported)
        onnx.save(proto, str(path))
        return
    from breastcam.console import silenced_fd2

    failure = None
    with silenced_fd2():  # the converter prints its MLIR diagnostics on fd 2; its exception has them
        try:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["serve"])
            path.write_bytes(converter.convert())
        except Exception as err:  # noqa: BLE001 - the converter raises ConverterError with MLIR text
            failure = err
    if failure is not None:
        ops = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", str(failure))))
        if ops:
            raise _UnsupportedOps(ops)
        raise ModelFileError(f"LiteRT conversion failed: {str(failure).strip().splitlines()[0][:300]}")


def _onnx_ops_of_default_domain() -> set[str]:
    import onnx.defs

    return {s.name for s in onnx.defs.get_all_schemas() if s.domain in ("", "ai.onnx")}


def run_converted(path: str | Path, format: str, pixels: np.ndarray) -> np.ndarray:
    """Probabilities from an ONNX (onnxruntime) or LiteRT (ai-edge-litert) file."""
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: pixels})[0]
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serve")
    return np.concatenate([runner(images=pixels[i:i + 1])["probabilities"] for i in range(len(pixels))], 0)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


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
        ours = out.is_file() and out.suffix in (".keras", ".onnx", ".tflite")
    if not ours:
        raise RunStateError(
            f"export destination {out} exists and is not a breastcam "
            f"{'SavedModel export' if directory else 'export file'}: --force replaces only a "
            "previous export; choose another --out"
        )


def _destination(out: str | Path, format: str) -> Path:
    out = Path(out)
    suffix = {"keras": ".keras", "onnx": ".onnx", "litert": ".tflite"}.get(format)
    return out.with_suffix(suffix) if suffix and out.suffix != suffix else out


def export_run(run_dir: str | Path, format: str = "savedmodel", out: str | Path | None = None,
               cam_params: dict | None = None, force: bool = False) -> Path:
    """Export a run's model with its model card; default destination ``<run_dir>/export/``.

    The export is verified on up to 8 of the run's test images (seeded random pixels where
    the images are not reachable). An existing destination is refused unless ``force``.
    """
    from breastcam.report.model_card import model_card

    if format not in FORMATS:
        raise UsageError(f"--format {format!r}; choose one of {', '.join(FORMATS)}")
    run = Run.open(run_dir)
    run.model_path()
    out = _destination(out or run.path(files.EXPORT) / _FILE_NAMES[format], format)
    _check_destination(out, force, directory=format == "savedmodel")  # before the slow load
    trained = run.trained_model()
    pixels, source = _check_images(run, trained)
    card = model_card(run, trained)
    card["verification_images"] = source
    return export_trained(trained, out, format=format, cam_params=cam_params, force=force,
                          check_pixels=pixels, card=card)


def _check_images(run: Run, trained: TrainedModel) -> tuple[np.ndarray | None, str]:
    from breastcam.data.pipeline import image_paths
    from breastcam.errors import BreastcamError

    try:
        paths = image_paths(run.rows("test").head(_VERIFY_IMAGES), run.data_root)
        if paths and all(Path(p).is_file() for p in paths):
            return trained.read(paths), f"{len(paths)} test images of the run"
    except BreastcamError:  # no test rows, an unreadable image: random pixels, and the card says so
        pass
    return None, "4 seeded random images (the run's test images were not found)"


# === Predicting ===

class Predictor:
    """Predicts (and explains) raw images with a run folder, a ``.keras`` file or a SavedModel."""

    def __init__(self, path: str | Path, *, metadata: dict | None = None):
        path = Path(path)
        self.saved = None
        self.trained: TrainedModel | None = None
        self._cam = None
        if path.is_dir() and (path / "saved_model.pb").is_file():
            self.saved = tf.saved_model.load(str(path))
            meta_path = path / METADATA
            if metadata is None:
                if not meta_path.exists():
                    raise MissingFileError(f"{meta_path} not found: export the model with `breastcam export`")
                metadata = json.loads(meta_path.read_text())
            self.meta = metadata
        elif path.exists():
            self.trained = load_trained(path)
            self.meta = {**self.trained.metadata(), "explain": {"method": "dtgradcam", **DEFAULT_CAM}}
            meta_path = path.with_suffix(".json")
            if path.is_file() and meta_path.is_file():
                self.meta["explain"] = json.loads(meta_path.read_text()).get("explain", self.meta["explain"])
        else:
            raise MissingFileError(f"model {path} not found: give a run folder, an exported SavedModel "
                                   "folder or a .keras file")
        self.size = tuple((self.meta.get("image_size") or self.meta["input_shape"])[:2])

    def load(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Decode (any supported format) and resize to the model's input size: float32 0-255."""
        return self.pixels([read_image(p) for p in paths])

    def pixels(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Decoded RGB images resized to the model's input size: float32 0-255."""
        from breastcam.data.pipeline import resize_image

        return tf.cast(tf.stack([resize_image(tf.constant(img), self.size) for img in images]), tf.float32).numpy()

    def predict(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        return self.serve(pixels, batch_size)["probabilities"]

    def serve(self, pixels: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
        """Everything the model serves: probabilities, uncertainty and, if calibrated, the
        conformal prediction sets."""
        if self.saved is not None:
            signature = self.saved.signatures["serving_default"]
            fn = lambda x: signature(images=x)  # noqa: E731
        else:
            fn = self.trained.outputs  # the same graph the SavedModel's signature is traced from
        return _batched(fn, pixels, batch_size)

    def explain(self, pixels: np.ndarray, batch_size: int = 8) -> dict[str, np.ndarray]:
        """DT Grad-CAM maps (``cam``), thresholds, targets and probabilities, ``batch_size``
        images at a time (each image runs N noisy copies through the network)."""
        if self.saved is not None:
            signature = self.saved.signatures["explain"]
            return _batched(lambda x: signature(images=x), pixels, batch_size)
        if self._cam is None:  # traced once, reused for every batch
            params = {k: v for k, v in self.meta["explain"].items() if k != "method"}
            self._cam = get_cam("dtgradcam", self.trained.network, batch_size=batch_size, **params)
        cam = self._cam
        maps = cam(self.trained.prepare(pixels).numpy())
        return {"cam": maps, "threshold": cam.last_thresholds_, "target": cam.last_targets_,
                "probabilities": cam.last_probabilities_}


def _batched(fn, pixels: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """``fn``'s dict of tensors over ``pixels``, ``batch_size`` images a call, joined."""
    parts = [fn(tf.constant(pixels[i:i + batch_size], tf.float32)) for i in range(0, len(pixels), batch_size)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts], 0) for k in parts[0]}


PREDICT_CHUNK = 64  # images decoded, served and explained at a time: memory stays flat for any folder


def predict_images(model_path: str | Path, images: str | Path | Sequence[str | Path], *, explain: bool = False,
                   out_dir: str | Path | None = None, refer_above: float | None = None,
                   chunk: int = PREDICT_CHUNK) -> pd.DataFrame:
    """Class probabilities for image files (folders are searched for images); with
    ``explain``, DT Grad-CAM overlays and maps in ``out_dir``.

    ``model_path`` is a run folder, an exported SavedModel folder or a ``.keras`` file; all three
    give ``breastcam evaluate``'s probabilities for the same files. Columns: ``prediction``,
    ``prob_<class>``, ``uncertainty`` (entropy, nats), ``prediction_set`` when the model is
    calibrated with conformal sets, and ``refer`` (uncertainty above ``refer_above``, or a set
    of more than one class) when ``refer_above`` is given. Every file is checked before the
    model is loaded; then ``chunk`` images at a time are decoded, served and explained.
    """
    from breastcam.data.image_paths import expand_image_paths
    from breastcam.data.preflight import bad_files_message, find_bad_files
    from breastcam.errors import DataError
    from breastcam.explain.overlay import overlay, save_rgb

    if explain and out_dir is None:
        raise UsageError("--explain writes overlays and maps: give the folder for them with --out")
    images = expand_image_paths(images)
    bad = find_bad_files([str(p) for p in images])
    if bad:
        raise DataError(bad_files_message(bad, len(images), "the images to predict",
                                          hint="Replace them or leave them out."))
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    pred = Predictor(model_path)
    names = pred.meta["class_names"]
    parts: list[dict[str, np.ndarray]] = []
    chunk = max(1, int(chunk))
    starts = range(0, len(images), chunk)
    for start in progress(starts, desc="predict", total=len(starts), unit="chunk", min_items=2):
        paths = images[start:start + chunk]
        originals = [read_image(p) for p in paths]  # decoded once: served, then overlaid
        pixels = pred.pixels(originals)
        parts.append(pred.serve(pixels))
        if explain:
            for path, original, cam in zip(paths, originals, pred.explain(pixels)["cam"]):
                _, _, over = overlay(original, cam)
                save_rgb(out / f"{path.stem}_overlay.png", over)
                np.save(out / f"{path.stem}_dtgradcam.npy", cam)
    served = {k: np.concatenate([p[k] for p in parts], 0) for k in parts[0]}
    probs = np.asarray(served["probabilities"])
    df = pd.DataFrame({"path": [str(p) for p in images],
                       "prediction": [names[i] for i in probs.argmax(1)]})
    for i, name in enumerate(names):
        df[f"prob_{name}"] = probs[:, i]
    df["uncertainty"] = served["uncertainty"]
    if "prediction_set" in served:
        df["prediction_set"] = ["|".join(n for n, k in zip(names, row) if k) for row in served["prediction_set"]]
    if refer_above is not None:
        refer = df["uncertainty"].to_numpy() > float(refer_above)
        if "prediction_set" in served:
            refer |= np.asarray(served["prediction_set"]).sum(axis=1) != 1
        df["refer"] = refer
    if out is not None:
        df.to_csv(out / "predictions.csv", index=False)
    return df
