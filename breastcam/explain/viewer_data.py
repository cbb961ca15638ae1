"""What the offline viewer shows of each image (``explain --html``): plain arrays, no HTML.

For every image: the pixels at the model's input size, the served probabilities (calibrated when
the run is) with their entropy and, when the run has conformal sets, the prediction set; the map
of every method for every class (the class toggle); DT Grad-CAM's kept region as boxes; the
ground-truth region where one is known (a mask folder or mini-MIAS circles).
:func:`breastcam.report.viewer.write_viewer` turns a list of these into one page.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
import tensorflow as tf

from breastcam.evaluate.trust import entropy
from breastcam.explain.base import BaseCAM
from breastcam.explain.registry import canonical_method, get_cam
from breastcam.runs import TrainedModel


@dataclasses.dataclass
class ViewerItem:
    name: str
    image: np.ndarray  # uint8 [h, w, 3] at the model's input size
    probabilities: list[float]
    target: int  # the class explained by default (the predicted one)
    maps: dict  # method -> {class index: [h, w] float map in [0, 1]}
    uncertainty: float | None = None
    prediction_set: list[int] | None = None
    boxes: dict = dataclasses.field(default_factory=dict)  # method -> [[x, y, w, h], ...]
    mask: np.ndarray | None = None  # bool [h, w], the known region
    truth: str | None = None


def region_boxes(region: np.ndarray, min_area: int = 4) -> list[list[int]]:
    """Bounding boxes ``[x, y, w, h]`` of the connected parts of a boolean region."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
    return [[int(x), int(y), int(w), int(h)] for x, y, w, h, area in stats[1:n] if area >= min_area]


def known_region(mask, size: tuple[int, int]) -> np.ndarray | None:
    """A ground-truth mask (any size, non-zero = inside) as a boolean region at ``size`` = (h, w)
    (nearest neighbour), or None when there is no mask or it is empty."""
    if mask is None:
        return None
    region = cv2.resize(np.asarray(mask, np.uint8), (int(size[1]), int(size[0])),
                        interpolation=cv2.INTER_NEAREST).astype(bool)
    return region if region.any() else None


def add_map(items: dict, key, cam: BaseCAM, i: int, cam_map: np.ndarray, **item) -> ViewerItem:
    """Record image ``i`` of ``cam``'s last call (its map of the class explained, its
    probabilities and, for DT Grad-CAM, its kept region's boxes) in ``items[key]``; the item is
    made from ``item`` (``name``, ``image``, optional ``mask`` and ``truth``) the first time a
    method sees the image. For pipelines that explain one method at a time (the experiments)."""
    target = int(cam.last_targets_[i])
    viewer_item = items.get(key)
    if viewer_item is None:
        viewer_item = items[key] = ViewerItem(
            probabilities=[float(p) for p in cam.last_probabilities_[i]], target=target, maps={}, **item)
    viewer_item.maps[cam.name] = {target: cam_map}
    if getattr(cam, "last_masks_", None) is not None:
        viewer_item.boxes[cam.name] = region_boxes(np.asarray(cam.last_masks_[i]))
    return viewer_item


def viewer_items(trained: TrainedModel, files: Sequence[str | os.PathLike],
                 methods: Sequence[str] | Mapping[str, BaseCAM], *, layer: str | None = "auto", masks=None,
                 params: Mapping | None = None, batch_size: int = 8) -> list[ViewerItem]:
    """Explain ``files`` with every method for every class and collect what the viewer shows.

    ``methods``: names (CAMs made here with ``layer`` and ``params[method]``), or ready CAM
    objects of ``trained.network`` by name (``explain --html`` passes those it explained the
    files with: their graphs are traced once)."""
    from breastcam.data.decode import read_image
    from breastcam.data.pipeline import resize_image
    from breastcam.explain.run import MaskSource

    if isinstance(methods, Mapping):
        cams = {canonical_method(m): cam for m, cam in methods.items()}
    else:
        params = dict(params or {})
        cams = {m: get_cam(m, trained.network, layer, batch_size=batch_size, **dict(params.get(m) or {}))
                for m in (canonical_method(m) for m in dict.fromkeys(methods))}
    source = MaskSource(masks)
    k = len(trained.class_names)
    items: list[ViewerItem] = []
    for start in range(0, len(files), batch_size):
        chunk = [Path(f) for f in files[start:start + batch_size]]
        originals = [read_image(f) for f in chunk]
        pixels = tf.stack([resize_image(tf.constant(o), trained.image_size) for o in originals])
        x = trained.prepare(pixels).numpy()
        raw = np.asarray(trained.network.predict_on_batch(x), np.float64)
        served = np.asarray(trained.calibrate(raw), np.float64) if trained.calibration else raw
        predicted = served.argmax(axis=1)
        conformal = (trained.calibration or {}).get("conformal")
        sets = np.asarray(trained.conformal_set(tf.constant(served, tf.float32))) if conformal else None
        per_method: dict[str, dict[int, np.ndarray]] = {m: {} for m in cams}  # method -> class -> [B, h, w]
        boxes: dict[str, list] = {}  # method -> per image, the kept region of the predicted class
        for m, cam in cams.items():
            for c in range(k):
                per_method[m][c] = cam(x, np.full(len(x), c, np.int32))
                if m == "dtgradcam":
                    for i in np.flatnonzero(predicted == c):
                        boxes.setdefault(m, {})[i] = region_boxes(np.asarray(cam.last_masks_[i]))
        for i, path in enumerate(chunk):
            u8 = np.asarray(tf.cast(tf.round(pixels[i]), tf.uint8))
            mask = known_region(source.get(path, originals[i].shape[:2]) if source.given else None,
                                trained.image_size)
            p = served[i]
            items.append(ViewerItem(
                name=path.name, image=u8, probabilities=[float(v) for v in p], target=int(predicted[i]),
                maps={m: {c: v[i] for c, v in per.items()} for m, per in per_method.items()},
                uncertainty=float(entropy(p[None])[0]),
                prediction_set=None if sets is None else [int(c) for c in np.flatnonzero(sets[i])],
                boxes={m: b[i] for m, b in boxes.items() if i in b},
                mask=mask,
            ))
    return items
