"""Any dataset laid out one folder per class (the Keras ``image_dataset_from_directory`` layout).

Layout expected::

    <root>/<class_a>/**/<image>
    <root>/<class_b>/**/<image>

Classes are the sub-folders of ``root`` in alphabetical order (or ``classes``, which fixes both
the set and the order); images may sit at any depth below their class folder. Image files are
those with an extension the decoder supports (``breastcam.data.decode.SUPPORTED_EXTENSIONS``).
Any other file below a class folder is an error listing it, unless ``ignore_other=True``; files
and folders whose name starts with ``.`` are always ignored. Files directly in ``root`` are not
part of any class and are not looked at.

``patient_regex`` extracts a patient id from each image's path relative to its class folder
(POSIX separators; ``re.search``): the group named ``patient`` if the pattern has one, else the
first group, else the whole match. An image it does not match is an error. Without it
``patient_id`` is empty (image-level splits only).
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import pandas as pd

from breastcam.console import progress
from breastcam.errors import DataError, MissingFileError
from breastcam.data.loaders._common import as_root, build_frame, is_hidden, listing, relpath


def _patient(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    if m is None:
        return None
    if "patient" in pattern.groupindex:
        return m["patient"]
    return m[1] if pattern.groups else m[0]


def load(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    patient_regex: str | None = None,
    ignore_other: bool = False,
) -> pd.DataFrame:
    """Manifest of a folder-per-class dataset (see module doc).

    Args:
        root: folder whose sub-folders are the classes.
        classes: class names in label order; default all sub-folders, sorted alphabetically.
        patient_regex: pattern giving the patient id from the path below the class folder,
            e.g. ``r"^(P\\d+)_"`` or ``r"^(?P<patient>[^/]+)/"`` (one folder per patient).
        ignore_other: leave out non-image files instead of failing on them.

    Columns: path, label, label_index, patient_id.
    """
    from breastcam.data.decode import SUPPORTED_EXTENSIONS

    extensions = {e.lower() for e in SUPPORTED_EXTENSIONS}
    base = as_root(root, "folder")
    present = sorted(p.name for p in base.iterdir() if p.is_dir() and not is_hidden(p))
    if classes is None:
        classes = present
        if not classes:
            raise DataError(f"folder: {base} has no class sub-folders; expected <root>/<class>/<image>")
    else:
        classes = list(classes)
        missing = [c for c in classes if c not in present]
        if missing:
            raise MissingFileError(f"folder: class folder(s) {missing} not found in {base} "
                                    f"(it has {present})")
    pattern = re.compile(patient_regex) if patient_regex else None

    rows, other, unmatched = [], [], []
    for label in classes:
        folder = base / label
        for path in progress(sorted(folder.rglob("*")), desc=f"manifest {folder.name}",
                             unit="file", min_items=1000):
            inner = path.relative_to(folder)
            if any(part.startswith(".") for part in inner.parts) or not path.is_file():
                continue
            if path.suffix.lower() not in extensions:
                other.append(relpath(path, base))
                continue
            patient = ""
            if pattern is not None:
                patient = _patient(pattern, inner.as_posix())
                if patient is None:
                    unmatched.append(relpath(path, base))
                    continue
            rows.append({"path": relpath(path, base), "label": label, "patient_id": patient})
    if other and not ignore_other:
        raise DataError(
            f"folder: {len(other)} file(s) under {base} are not images "
            f"(supported: {', '.join(sorted(extensions))}): {listing(other)}; move them out or "
            "pass ignore_other=True (CLI: --ignore-other)"
        )
    if unmatched:
        raise DataError(f"folder: patient_regex {patient_regex!r} does not match "
                         f"{len(unmatched)} image(s): {listing(unmatched)}")
    if not rows:
        raise DataError(f"folder: no images in the class folders {classes} of {base}")
    return build_frame(rows, classes, "folder")
