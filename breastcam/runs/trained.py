"""``TrainedModel``: the network with the input pipeline it was trained behind.

Raw RGB image -> resize to ``image_size`` (antialiased bilinear, rounded to whole grey levels,
exactly as the training pipeline's ``resize_image``) -> the run's fitted stain normaliser, if
any -> ``preprocessing`` -> network -> probabilities over ``class_names``. Evaluation, CAMs,
export (the SavedModel's signatures are this object's graph) and prediction all call it, so
what is evaluated is what is shipped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from breastcam.data.decode import read_image
from breastcam.data.pipeline import resize_rounded, resize_image
from breastcam.data.preprocess import get_preprocessor
from breastcam.errors import ConfigError, DataError, MissingFileError, ModelFileError
from breastcam.runs import files

METADATA_SUFFIX = ".json"  # beside an exported .keras file: the input pipeline and classes


@dataclasses.dataclass
class TrainedModel:
    """A network and everything between a raw image and its input. Callable on raw images."""

    network: keras.Model
    class_names: list[str]
    image_size: tuple[int, int]
    preprocessing: str
    stain: Any = None  # a fitted breastcam.stain.Macenko, or None
    source: str = ""  # the run folder or file it came from
    provenance: dict = dataclasses.field(default_factory=dict)
    # ``breastcam calibrate``: {"method", "temperature": T | None, "vector": {"scale", "bias"}
    # (method vector), "conformal": {"alpha", "score", "threshold"}}
    calibration: dict | None = None

    def __post_init__(self):
        self.class_names = [str(c) for c in self.class_names]
        self.image_size = tuple(int(v) for v in self.image_size)
        get_preprocessor(self.preprocessing)  # a clear error for an unknown name, now
        outputs = int(self.network.outputs[0].shape[-1])
        if outputs not in (len(self.class_names), 1):
            raise DataError(
                f"the model outputs {outputs} classes but {len(self.class_names)} class names were "
                f"given ({self.class_names}); check data.class_names of the run"
            )
        if self.stain is not None:
            self.stain.counting = False  # part of an exported graph: no Python-side counters

    # === Construction ===
    @classmethod
    def from_network(cls, network: keras.Model, *, preprocessing: str | None = None,
                     image_size: int | Sequence[int] | None = None,
                     class_names: Sequence[str] | None = None, stain=None, source: str = "") -> "TrainedModel":
        """A bare Keras model with its input pipeline from the registry (by ``network.name``)
        where not given. A model the registry does not know needs ``preprocessing``."""
        from breastcam import models as registry

        spec = registry.spec(network.name) if network.name in registry.names() else None
        if preprocessing is None:
            if spec is None:
                raise ConfigError(
                    f"model {network.name!r} is not a registered breastcam model: give its "
                    "preprocessing (--preprocessing), e.g. 'minus_one_one', 'zero_one', 'caffe' or 'none'"
                )
            preprocessing = spec.preprocessing
        if image_size is None:
            shape = tuple(network.inputs[0].shape[1:3])
            if None in shape:
                if spec is None:
                    raise ConfigError(f"model {network.name!r} accepts any input size: give image_size (--input-size)")
                shape = spec.input_shape[:2]
            image_size = shape
        elif isinstance(image_size, (int, np.integer)):
            image_size = (image_size, image_size)
        if class_names is None:
            n = int(network.outputs[0].shape[-1])
            class_names = [f"class_{i}" for i in range(max(n, 2))]
        return cls(network=network, class_names=list(class_names), image_size=tuple(image_size),
                   preprocessing=preprocessing, stain=stain, source=source)

    @classmethod
    def from_metadata(cls, network: keras.Model, meta: dict, source: str = "") -> "TrainedModel":
        """From the ``metadata()`` written beside an export."""
        stain = None
        if meta.get("stain"):
            from breastcam.stain import Macenko

            stain = Macenko.from_config(meta["stain"], jit_compile=False)
        return cls(network=network, class_names=meta["class_names"],
                   image_size=tuple(meta.get("image_size") or meta["input_shape"][:2]),
                   preprocessing=meta["preprocessing"], stain=stain, source=source,
                   provenance=dict(meta.get("run") or {}), calibration=meta.get("calibration"))

    # === The input pipeline (TensorFlow ops: usable in a graph) ===
    def resize(self, images) -> tf.Tensor:
        """Raw RGB ``[B, H, W, 3]`` (any size, 0-255) -> float32 whole grey levels at ``image_size``."""
        return resize_rounded(tf.convert_to_tensor(images), self.image_size)

    def prepare(self, pixels) -> tf.Tensor:
        """Pixels at ``image_size`` (uint8, or float whole grey levels) -> the network's input."""
        x = tf.convert_to_tensor(pixels)
        if self.stain is not None:
            if x.dtype != tf.uint8:  # the normaliser's uint8 path (a table, not a log per value)
                x = tf.cast(tf.round(tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 255.0)), tf.uint8)
            x = self.stain.transform(x)
        return get_preprocessor(self.preprocessing)(tf.cast(x, tf.float32))

    def calibrate(self, probabilities) -> tf.Tensor:
        """The served probabilities: ``softmax(log p / T)`` (temperature) or ``softmax(w log p +
        b)`` (vector scaling) when the run is calibrated, else p."""
        p = tf.convert_to_tensor(probabilities, tf.float32)
        calibration = self.calibration or {}
        logp = tf.math.log(tf.clip_by_value(p, 1e-12, 1.0))
        if calibration.get("vector"):
            vector = calibration["vector"]
            return tf.nn.softmax(logp * tf.constant(vector["scale"], tf.float32)
                                 + tf.constant(vector["bias"], tf.float32), axis=-1)
        t = calibration.get("temperature")
        if t is None:
            return p
        return tf.nn.softmax(logp / float(t), axis=-1)

    def uncalibrated(self) -> "TrainedModel":
        """The same model serving the network's own probabilities (what calibration fits on)."""
        return dataclasses.replace(self, calibration=None) if self.calibration else self

    def __call__(self, images) -> tf.Tensor:
        """Probabilities of raw RGB images (any size): resize, stain, preprocess, network,
        calibration."""
        return self.calibrate(self.network(self.prepare(self.resize(images)), training=False))

    def outputs(self, images) -> dict[str, tf.Tensor]:
        """What the SavedModel serves: probabilities, their entropy (``uncertainty``, nats) and,
        when calibrated with conformal sets, ``prediction_set`` (bool per class)."""
        p = self(images)
        out = {"probabilities": p,
               "uncertainty": -tf.reduce_sum(p * tf.math.log(tf.clip_by_value(p, 1e-12, 1.0)), axis=-1)}
        conformal = (self.calibration or {}).get("conformal")
        if conformal:
            out["prediction_set"] = self.conformal_set(p)
        return out

    def conformal_set(self, p) -> tf.Tensor:
        """``[B, K]`` bool: the conformal prediction set of served probabilities ``p``."""
        conformal = self.calibration["conformal"]
        threshold = float(min(conformal["threshold"], 1e9))
        if conformal["score"] == "lac":
            score = 1.0 - p
        else:  # aps: the mass of the classes ranked up to and including each class
            order = tf.argsort(-p, axis=-1, stable=True)
            cum = tf.cumsum(tf.gather(p, order, batch_dims=1), axis=-1)
            score = tf.gather(cum, tf.argsort(order, axis=-1, stable=True), batch_dims=1)
        return score <= threshold + 1e-12

    # === Convenience (NumPy in, NumPy out) ===
    def read(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """Decode image files and resize them as training did: uint8 ``[N, h, w, 3]``."""
        return np.stack([resize_image(tf.constant(read_image(p)), self.image_size).numpy() for p in paths])

    def predict_on_batch(self, pixels) -> np.ndarray:
        """Probabilities (as served: calibrated when the run is) of pixels already at ``image_size``."""
        raw = np.asarray(self.network.predict_on_batch(self.prepare(pixels)))
        return raw if not self.calibration else self.calibrate(raw).numpy()

    def predict(self, pixels, batch_size: int = 32) -> np.ndarray:
        pixels = np.asarray(pixels)
        return np.concatenate([self.predict_on_batch(pixels[i:i + batch_size])
                               for i in range(0, len(pixels), batch_size)], axis=0)

    # === What an export records ===
    @property
    def model_name(self) -> str:
        return self.network.name

    def stain_summary(self) -> dict | None:
        if self.stain is None:
            return None
        return {"method": "macenko", **self.stain.get_config()}

    def metadata(self) -> dict:
        return {
            "model_name": self.network.name,
            "class_names": list(self.class_names),
            "image_size": list(self.image_size),
            "input_shape": [*self.image_size, 3],
            "preprocessing": self.preprocessing,
            "stain": self.stain.get_config() if self.stain is not None else None,
            "calibration": self.calibration,
            "run": dict(self.provenance),
        }

    def __repr__(self) -> str:
        stain = "macenko" if self.stain is not None else "none"
        return (f"TrainedModel({self.network.name!r}, classes={self.class_names}, "
                f"size={self.image_size}, preprocessing={self.preprocessing!r}, stain={stain})")


def load_trained(path: str | os.PathLike, *, preprocessing: str | None = None,
                 image_size: int | Sequence[int] | None = None) -> TrainedModel:
    """A :class:`TrainedModel` from a run folder, a run's model file, or an exported ``.keras``.

    A ``.keras`` file carries its pipeline when it is a run's checkpoint or an export (the
    ``.json`` beside it); any other ``.keras`` (a user's own model) takes ``preprocessing``
    (and ``image_size`` for a model of any input size), or the registry's defaults.
    """
    from breastcam.models import load_model
    from breastcam.runs.run import Run

    path = Path(path)
    if path.is_dir():
        if Run.is_run(path):
            return Run.open(path).trained_model()
        if (path / "saved_model.pb").is_file():
            raise ModelFileError(
                f"{path} is an exported SavedModel: predict with `breastcam predict {path} IMAGES` "
                "(breastcam.export.Predictor); explain from the run folder or its .keras export"
            )
        raise MissingFileError(
            f"{path} is a folder but not a run directory (no {files.CONFIG}) nor an exported SavedModel"
        )
    if not path.exists():
        raise MissingFileError(f"model {path} not found: give a run folder, a .keras file or an exported SavedModel")
    if Run.is_run(path.parent) and preprocessing is None:
        return Run.open(path.parent).trained_model(path.name)
    network = load_model(path)
    meta_path = path.with_suffix(METADATA_SUFFIX)
    if meta_path.is_file() and preprocessing is None:
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{meta_path} is not valid JSON ({err}): export the model again") from None
        return TrainedModel.from_metadata(network, meta, source=str(path))
    return TrainedModel.from_network(network, preprocessing=preprocessing, image_size=image_size,
                                     source=str(path))
