"""mini-MIAS (Suckling et al. 1994): 1024x1024 8-bit PGM mammograms with lesion circles.

Layout expected (the ``all-mias`` distribution)::

    <root>/Info.txt
    <root>/mdb001.pgm ... mdb322.pgm

``root`` may also be the folder holding ``all-mias/``. ``Info.txt`` has one or more rows per
image, ``REFNUM TISSUE CLASS [SEVERITY [X Y RADIUS]]`` (some calcification rows carry
``*NOTE 3*`` or nothing instead of coordinates; ``NORM`` rows have no severity). The manifest has
**one row per image on disk**: Info.txt rows of absent images are ignored (a partial copy is
fine), but an image on disk without an Info.txt row is an error.

* ``label``: ``malignant`` if any row of the image is ``M``, else ``benign`` if any is ``B``, else
  ``normal``; with ``classes="binary"``: ``normal`` / ``abnormal``.
* ``patient_id``: films come in left/right pairs of one patient, ``mdb001``+``mdb002`` ->
  ``(N + 1) // 2``.
* ``lesions``: JSON list of ``{"x", "y", "radius", "abnormality", "severity"}``, one per
  annotated abnormality, with ``y`` as in Info.txt (origin bottom-left). Abnormalities without a
  location have ``null`` coordinates. :func:`mias_lesion_mask` draws the circles.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from breastcam.errors import DataError, MissingFileError
from breastcam.data.loaders._common import as_root, build_frame, choose, is_hidden, listing, relpath

THREE_CLASSES = ("normal", "benign", "malignant")
BINARY_CLASSES = ("normal", "abnormal")
CLASSES = THREE_CLASSES  # default class order (classes="three")
IMAGE_SIZE = 1024  # every mini-MIAS film is 1024 x 1024; Info.txt coordinates refer to it
COLUMNS = ("refnum", "tissue", "abnormality", "severity", "lesions")

_ROW = re.compile(r"^(mdb\d{3})\s+([FGD])\s+([A-Z]{4})\b(.*)$", re.IGNORECASE)
_IMAGE = re.compile(r"^mdb(\d{3})\.pgm$", re.IGNORECASE)


def classes_for(classes: str = "three") -> tuple[str, ...]:
    return BINARY_CLASSES if classes == "binary" else THREE_CLASSES


def parse_info(path: str | os.PathLike) -> dict[str, list[dict[str, object]]]:
    """Info.txt -> ``{refnum: [row, ...]}``, each row ``tissue, abnormality, severity, x, y,
    radius`` (severity ``""`` for NORM, coordinates ``None`` where the file gives none)."""
    rows: dict[str, list[dict[str, object]]] = {}
    text = Path(path).read_text(encoding="latin-1")
    for number, line in enumerate(text.splitlines(), 1):
        m = _ROW.match(line.strip())
        if not m:
            continue
        ref, tissue, abnormality, rest = m[1].lower(), m[2].upper(), m[3].upper(), m[4].split()
        severity = rest[0].upper() if rest and rest[0].upper() in ("B", "M") else ""
        coords = rest[1:4] if severity else []
        x = y = radius = None
        if len(coords) == 3 and all(c.isdigit() for c in coords):
            x, y, radius = (int(c) for c in coords)
        if abnormality != "NORM" and not severity:
            raise DataError(f"{path}, line {number}: abnormality {abnormality} without severity "
                             f"B/M: {line.strip()!r}")
        rows.setdefault(ref, []).append({"tissue": tissue, "abnormality": abnormality,
                                         "severity": severity, "x": x, "y": y, "radius": radius})
    return rows


def _find_info(base: Path) -> Path:
    for folder in (base, base / "all-mias"):
        for name in ("Info.txt", "info.txt", "INFO.TXT"):
            if (folder / name).is_file():
                return folder / name
    raise MissingFileError(
        f"mias: no Info.txt in {base} (nor in {base / 'all-mias'}); pass the all-mias folder that "
        "holds Info.txt and the mdbNNN.pgm files"
    )


def load(root: str | os.PathLike, *, classes: str = "three") -> pd.DataFrame:
    """Manifest of the mini-MIAS PGMs under ``root`` (one row per image, see module doc).

    Args:
        root: the ``all-mias`` folder (or the folder holding it).
        classes: ``"three"`` (normal, benign, malignant; default) or ``"binary"`` (normal,
            abnormal).

    Columns: path, label, label_index, patient_id, refnum, tissue (F/G/D), abnormality
    (``CIRC``, ``NORM``, several joined by ``;``), severity (``B``/``M``/empty), lesions (JSON).
    """
    choose(classes, ("three", "binary"), "classes", "mias")
    base = as_root(root, "mias")
    info_path = _find_info(base)
    info = parse_info(info_path)
    images = sorted(p for p in info_path.parent.iterdir()
                    if p.is_file() and not is_hidden(p) and p.suffix.lower() == ".pgm")
    if not images:
        raise DataError(f"mias: no .pgm images beside {info_path}")
    odd = [p.name for p in images if not _IMAGE.match(p.name)]
    orphans = [p.name for p in images if _IMAGE.match(p.name) and p.stem.lower() not in info]
    if odd or orphans:
        parts = []
        if odd:
            parts.append(f"not named mdbNNN.pgm: {listing(odd)}")
        if orphans:
            parts.append(f"no row in {info_path.name}: {listing(orphans)}")
        raise DataError(f"mias: image(s) in {info_path.parent} cannot be labelled — "
                         + "; ".join(parts) + " — remove them or add their Info.txt rows")

    rows = [image_row(path.stem.lower(), info[path.stem.lower()], relpath(path, base), classes)
            for path in images]
    return build_frame(rows, classes_for(classes), "mias", COLUMNS)


def image_row(ref: str, entries: Sequence[Mapping[str, object]], path: str,
              classes: str = "three") -> dict[str, object]:
    """The manifest row of film ``ref`` from its Info.txt rows (see the module doc)."""
    severities = {e["severity"] for e in entries}
    severity = "M" if "M" in severities else "B" if "B" in severities else ""
    three = {"M": "malignant", "B": "benign", "": "normal"}[severity]
    lesions = [
        {k: e[k] for k in ("x", "y", "radius", "abnormality", "severity")}
        for e in entries if e["abnormality"] != "NORM"
    ]
    return {
        "path": path,
        "label": three if classes == "three" else ("normal" if three == "normal" else "abnormal"),
        "patient_id": str((int(ref[3:]) + 1) // 2),
        "refnum": ref,
        "tissue": entries[0]["tissue"],
        "abnormality": ";".join(dict.fromkeys(str(e["abnormality"]) for e in entries)),
        "severity": severity,
        "lesions": json.dumps(lesions, separators=(",", ":")),
    }


def mias_lesion_mask(
    row_or_lesions: Mapping[str, object] | pd.Series | str | Sequence[Mapping[str, object]],
    shape: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
) -> np.ndarray:
    """Boolean ``shape`` mask, True inside the image's lesion circles (ground truth for CAMs).

    ``row_or_lesions`` is a manifest row (anything with a ``lesions`` entry), its JSON string, or
    the decoded list. Info.txt measures ``y`` from the bottom edge, so a circle centred at
    ``(x, y)`` covers image row ``1024 - y``, column ``x``; for another ``shape`` the circle is
    scaled with the image (an ellipse when the scale differs per axis). Lesions without a location
    are not drawn: a ``NORM`` image and an image with only unlocated calcifications both give an
    all-False mask (check ``lesions`` to tell them apart).
    """
    lesions = row_or_lesions
    if isinstance(lesions, (Mapping, pd.Series)):
        lesions = lesions["lesions"]
    if isinstance(lesions, str):
        lesions = json.loads(lesions)
    height, width = int(shape[0]), int(shape[1])
    sy, sx = height / IMAGE_SIZE, width / IMAGE_SIZE
    rows = np.arange(height, dtype=np.float64)[:, None]
    cols = np.arange(width, dtype=np.float64)[None, :]
    mask = np.zeros((height, width), dtype=np.bool_)
    for lesion in lesions:
        if lesion.get("x") is None or lesion.get("y") is None or lesion.get("radius") is None:
            continue
        cy, cx = (IMAGE_SIZE - float(lesion["y"])) * sy, float(lesion["x"]) * sx
        ry, rx = max(float(lesion["radius"]) * sy, 0.5), max(float(lesion["radius"]) * sx, 0.5)
        mask |= ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0
    return mask
