"""Explain image files: overlays, raw maps and a metrics table (the library behind ``breastcam explain``).

For every image: ``<stem>_overlay.png`` (the map blended over the original image, at the original
size, RGB), ``<stem>_<method>.npy`` (the raw ``[H, W]`` float32 map at model input resolution) and
one row of ``metrics.csv``: the class explained and its probability, where a region mask is
known IoU, Dice, precision, recall and F1, and when asked for (``faithfulness=True``) the
deletion / insertion areas (2 x ``steps`` forward passes per image) and ROAD's MoRF / LeRF means
and their gap (:mod:`breastcam.explain.road`: 18 imputed copies per image).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from breastcam.data.image_paths import expand_image_paths
from breastcam.data.preflight import bad_files_message, find_bad_files
from breastcam.errors import ConfigError, DataError, MissingFileError, UsageError
from breastcam.explain.base import BaseCAM
from breastcam.explain.faithfulness import deletion_insertion
from breastcam.explain.road import road
from breastcam.explain.metrics import METRICS, mask_metrics
from breastcam.explain.overlay import overlay, save_rgb
from breastcam.explain.read_ahead import ReadAhead
from breastcam.explain.registry import canonical_method, get_cam
from breastcam.runs import TrainedModel, load_trained

ROAD_KEYS = ("road_morf", "road_lerf", "road_gap")
PREFETCH = 8  # batches decoded ahead of the CAM (8 x 8 BreakHis images: about 70 MB)
MASK_EXTENSIONS = (".png", ".npy", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm", ".gif")
MASK_SUFFIXES = ("", "_mask", "_Mask", "-mask")


def load_model(
    model: str | os.PathLike | keras.Model | TrainedModel,
    *,
    num_classes: int = 2,
    input_size: int | None = None,
    weights: str | None = None,
    preprocessing: str | None = None,
) -> keras.Model | TrainedModel:
    """What ``--model`` names: a run folder or a ``.keras`` file (a :class:`TrainedModel`, with
    the run's stain normaliser and preprocessing), or a registry name built with ``weights``.

    ``input_size`` (square side) and ``num_classes`` apply to registry names only; they default
    to the registry's input size and 2 classes. ``preprocessing`` is for a user's own ``.keras``
    file, which carries none.
    """
    if isinstance(model, (keras.Model, TrainedModel)):
        return model
    from breastcam import models as registry

    path = Path(model)
    check_model_argument(model)
    if path.suffix in (".keras", ".h5") or path.exists():
        return load_trained(path, preprocessing=preprocessing, image_size=input_size)
    shape = None if input_size is None else (int(input_size), int(input_size), 3)
    return registry.build(str(model), num_classes, shape, weights=weights)


def check_model_argument(model: str | os.PathLike) -> None:
    """A clear error, before anything is loaded, for a ``--model`` that names nothing."""
    from breastcam import models as registry

    path = Path(model)
    if path.suffix in (".keras", ".h5") or path.exists() or str(model) in registry.names():
        return
    raise ConfigError(
        f"--model {model!r} is neither a run folder, an existing .keras file nor a registered "
        f"model name ({', '.join(registry.names())})"
    )


class MaskSource:
    """Region masks by image: a dict, a folder of mask files, or a mini-MIAS folder (Info.txt).

    - dict: keys are image paths or stems, values arrays or mask file paths;
    - folder with ``Info.txt``: mini-MIAS lesion circles (``mias_lesion_mask``) at the image size;
    - other folder: ``<stem><suffix><ext>`` with suffix in ``"", "_mask", "_Mask", "-mask"`` and
      ext in :data:`MASK_EXTENSIONS` (non-zero pixels = inside).
    ``get`` returns ``None`` for an image without a mask.
    """

    def __init__(self, masks: str | os.PathLike | Mapping | None):
        self.table: dict[str, object] = {}
        self.folder: Path | None = None
        self.mias: dict | None = None
        if masks is None:
            return
        if isinstance(masks, Mapping):
            self.table = {str(k): v for k, v in masks.items()}
            return
        folder = Path(masks)
        if not folder.is_dir():
            raise MissingFileError(f"mask folder {folder} does not exist")
        info = next((folder / n for n in ("Info.txt", "info.txt", "INFO.TXT") if (folder / n).is_file()), None)
        if info is not None:
            from breastcam.data.loaders.mias import parse_info

            self.mias = parse_info(info)
        else:
            self.folder = folder

    def get(self, path: Path, shape: tuple[int, int]) -> np.ndarray | None:
        if self.mias is not None:
            from breastcam.data.loaders.mias import mias_lesion_mask

            rows = self.mias.get(path.stem.lower())
            return None if rows is None else mias_lesion_mask(rows, shape)
        value = self.table.get(str(path), self.table.get(path.stem))
        if value is None and self.folder is not None:
            value = next((self.folder / f"{path.stem}{s}{e}" for s in MASK_SUFFIXES for e in MASK_EXTENSIONS
                          if (self.folder / f"{path.stem}{s}{e}").is_file()), None)
        if value is None:
            return None
        if isinstance(value, (str, os.PathLike)):
            value = _read_mask(Path(value))
        mask = np.asarray(value)
        return mask[..., 0] if mask.ndim == 3 else mask

    @property
    def given(self) -> bool:
        return bool(self.table) or self.folder is not None or self.mias is not None


def _read_mask(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        return np.load(path)
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ConfigError(f"cannot read mask file {path}")
    return mask


def method_params(method: str, params: Mapping, several: bool = False) -> dict:
    """The ``--param`` values ``method`` takes. With several methods each gets those it accepts
    (``n_samples`` goes to DT Grad-CAM only); one accepted by none is an error."""
    import inspect

    from breastcam.explain.registry import METHODS

    if not several:
        return dict(params)
    cls = METHODS[canonical_method(method)]
    accepted = set(inspect.signature(cls.__init__).parameters)
    taken_by_any = set().union(*(inspect.signature(c.__init__).parameters for c in METHODS.values()))
    unknown = sorted(set(params) - taken_by_any)
    if unknown:
        raise UsageError(f"--param {', '.join(unknown)}: no CAM method takes it")
    return {k: v for k, v in params.items() if k in accepted}


def as_trained(model: keras.Model | TrainedModel, preprocessing: str | None = None,
               image_size: int | tuple[int, int] | None = None) -> TrainedModel:
    """``model`` with its input pipeline: a TrainedModel as it is (``preprocessing`` must agree),
    a bare Keras model with ``preprocessing`` / ``image_size`` or the registry's defaults."""
    if isinstance(model, TrainedModel):
        if preprocessing is not None and preprocessing != model.preprocessing:
            raise UsageError(f"the model was trained with preprocessing {model.preprocessing!r}, not "
                             f"{preprocessing!r}: leave --preprocessing out for a run or an export")
        if image_size is not None:
            size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
            if tuple(size) != model.image_size:
                raise UsageError(f"the model was trained at {model.image_size}, not {tuple(size)}: "
                                 "leave --input-size out for a run or an export")
        return model
    return TrainedModel.from_network(model, preprocessing=preprocessing, image_size=image_size)


def explain_files(
    model: keras.Model | TrainedModel,
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    method: str | BaseCAM = "dtgradcam",
    *,
    out_dir: str | os.PathLike,
    masks: str | os.PathLike | Mapping | None = None,
    preprocessing: str | None = None,
    image_size: int | tuple[int, int] | None = None,
    batch_size: int = 8,
    targets: int | None = None,
    layer: str | None = None,
    faithfulness: bool = False,
    steps: int = 20,
    faithfulness_baseline: str | float = "zero",
    mask_threshold: str | float | None = None,
    alpha: float = 0.5,
    progress: bool = True,
    workers: int | None = None,
    read_ahead: ReadAhead | None = None,
    **params,
) -> pd.DataFrame:
    """Explain image files with one CAM method; writes overlays, ``.npy`` maps and ``metrics.csv``.

    ``model`` is a :class:`~breastcam.runs.TrainedModel` (a run's: images go through its resize,
    stain normaliser and preprocessing, as in ``evaluate``) or a bare Keras model, whose pipeline
    is resize to ``image_size`` (default: the model's input size) + ``preprocessing`` (default:
    the registry's choice for the model). ``targets`` = None explains the predicted class. ``mask_threshold`` None binarises
    DT Grad-CAM maps at 0 (the region the method kept) and every other map with Otsu.
    ``faithfulness`` adds the deletion / insertion areas (``steps`` steps towards
    ``faithfulness_baseline``): 2 x ``steps`` extra forward passes per image, so off by default.
    ``read_ahead``: a :class:`~breastcam.explain.read_ahead.ReadAhead` of the same files, started
    before the model was loaded (the CLI does); without it one is started here.
    ``params`` go to the CAM method. ``method`` may also be a ready CAM object of ``model``
    (``get_cam(...)``): repeated calls then reuse its compiled function instead of tracing anew.
    Returns the metrics table (also written as CSV).

    The CAM engine is the bottleneck by design: ``workers`` threads (default: the CPU count, at
    most 8) decode up to :data:`PREFETCH` batches ahead — from the start, while the CAM is built
    and traced — and write the previous batches' overlays while the engine runs.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive int, got {batch_size!r}")
    trained = as_trained(model, preprocessing, image_size)
    model = trained.network
    if isinstance(method, BaseCAM):
        if method.model is not model:
            raise UsageError(f"the CAM object explains model {method.model.name!r}, not {model.name!r}: "
                             "make it with get_cam(method, model)")
        if layer not in (None, "auto") or params:
            raise UsageError(f"layer= and method parameters ({sorted(params)}) belong to get_cam(...) "
                             "when explain_files is given a ready CAM object")
        cam, method = method, method.name
    else:
        cam, method = None, canonical_method(method)
    files = expand_image_paths(paths)
    # every file checked before the first batch (a ReadAhead's files were checked by its maker)
    bad = find_bad_files([str(f) for f in files]) if read_ahead is None else []
    if bad:
        raise DataError(bad_files_message(bad, len(files), "the images to explain",
                                          hint="Replace them or leave them out of --images."))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mask_source = MaskSource(masks)
    threshold = mask_threshold if mask_threshold is not None else (0.0 if method == "dtgradcam" else "otsu")
    write = partial(_write_one, out=out, method=method, alpha=alpha, masks=mask_source, threshold=threshold)
    chunks = [files[s:s + batch_size] for s in range(0, len(files), batch_size)]
    workers = workers or min(8, os.cpu_count() or 1)

    rows: list[Future] = []
    own = read_ahead is None
    ahead = ReadAhead(files) if own else read_ahead
    with ThreadPoolExecutor(workers, thread_name_prefix="explain-io") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="explain-load") as loader, ExitStack() as stack:
        load = partial(_load_batch, ahead=ahead, trained=trained)
        # Decoding starts now, PREFETCH batches ahead: building the CAM (layer search, tracing on
        # the first batch) is single-threaded Python, so a core is free for it.
        loading: deque[Future] = deque(loader.submit(load, c) for c in chunks[:PREFETCH])
        if cam is None:
            cam = get_cam(method, model, layer, batch_size=batch_size, **params)
        # The bar once the CAM exists (a model it cannot explain leaves no empty bar); off when
        # stderr is not a terminal, as every breastcam bar (console.progress).
        bar = stack.enter_context(tqdm(total=len(files), desc=f"explain {method}", unit="img",
                                       disable=None if progress else True))
        in_flight: deque[list[Future]] = deque()
        for k, chunk in enumerate(chunks):
            originals, x = loading.popleft().result()
            if k + PREFETCH < len(chunks):
                loading.append(loader.submit(load, chunks[k + PREFETCH]))
            maps = cam(x, targets)
            info = {"target": np.array(cam.last_targets_), "probs": np.array(cam.last_probabilities_)}
            if method == "dtgradcam":
                info["otsu_threshold"] = np.array(cam.last_thresholds_)
            if faithfulness:
                faith = deletion_insertion(model, x, maps, targets=info["target"], steps=steps,
                                           baseline=faithfulness_baseline, batch_size=max(batch_size, 16))
                info["deletion_auc"], info["insertion_auc"] = faith["deletion_auc"], faith["insertion_auc"]
                roads = road(model, x, maps, targets=info["target"], batch_size=max(batch_size, 16))
                for key in ROAD_KEYS:
                    info[key] = roads[key]
            while len(in_flight) >= 2:  # bound the memory held by pending writes
                _wait(in_flight.popleft())
            batch = [pool.submit(write, path, original, maps[i], {key: v[i] for key, v in info.items()})
                     for i, (path, original) in enumerate(zip(chunk, originals))]
            for future in batch:
                future.add_done_callback(lambda _: bar.update(1))
            in_flight.append(batch)
            rows.extend(batch)
        while in_flight:
            _wait(in_flight.popleft())
    if own:
        ahead.close()
    frame = pd.DataFrame([r.result() for r in rows])
    frame.to_csv(out / "metrics.csv", index=False)
    return frame


def _wait(futures: list[Future]) -> None:
    for future in futures:
        future.result()  # re-raises a failed write here, in the caller's thread


def _load_batch(chunk: list[Path], *, ahead: ReadAhead, trained: TrainedModel
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """Take ``chunk``'s decoded images and make the model batch through the trained model's pipeline."""
    from breastcam.data.pipeline import resize_image

    originals = [ahead.take(path) for path in chunk]
    x = tf.stack([resize_image(tf.constant(img), trained.image_size) for img in originals])
    return originals, trained.prepare(x).numpy()


def _write_one(path: Path, original: np.ndarray, cam_map: np.ndarray, info: dict, *, out: Path,
               method: str, alpha: float, masks: MaskSource, threshold) -> dict:
    """Overlay, raw map and the metrics row of one image (runs in a worker thread)."""
    _, _, blended = overlay(original, cam_map, alpha=alpha)
    save_rgb(out / f"{path.stem}_overlay.png", blended)
    np.save(out / f"{path.stem}_{method}.npy", cam_map)
    probs, target = info["probs"], int(info["target"])
    row = {
        "path": str(path),
        "stem": path.stem,
        "method": method,
        "target": target,
        "predicted": int(np.argmax(probs)),
        "target_probability": float(probs[target]),
    }
    for key in ("deletion_auc", "insertion_auc", *ROAD_KEYS, "otsu_threshold"):
        if key in info:
            row[key] = float(info[key])
    if masks.given:
        mask = masks.get(path, original.shape[:2])
        has = mask is not None and bool(np.any(mask))
        row["has_mask"] = has
        # No region (a normal image, an unlocated lesion): nothing to localise.
        row.update(mask_metrics(cam_map, mask, threshold) if has else dict.fromkeys(METRICS, np.nan))
    return row
