"""Shared pieces of the dataset loaders: building the frame, relative paths, clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from breastcam.errors import DataError, MissingFileError
from breastcam.data.manifest import REQUIRED_COLUMNS

# How many offending names an error message lists before it says "and N more".
MAX_LISTED = 10


def as_root(root: str | os.PathLike, dataset: str) -> Path:
    """``root`` as a Path, or ``FileNotFoundError`` saying what the loader expected there."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise MissingFileError(
            f"{dataset}: dataset root {path} is not a folder; pass the folder that holds the "
            f"{dataset} files (see `help(breastcam.data.loaders.{dataset})` for the layout)"
        )
    return path


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with POSIX separators (manifests are portable)."""
    return path.relative_to(root).as_posix()


def listing(items: Iterable[object], limit: int = MAX_LISTED) -> str:
    """``a, b, c and 7 more`` — for error messages that must name every culprit."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def build_frame(
    rows: Sequence[Mapping[str, object]],
    classes: Sequence[str],
    dataset: str,
    columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows (each with ``path``, ``label``, ``patient_id`` + dataset fields) -> a manifest.

    Adds ``label_index`` from ``classes``, sorts by ``path`` (so a manifest never depends on the
    order the file system lists files) and records the class order in ``df.attrs``.
    """
    order = list(REQUIRED_COLUMNS) + [c for c in columns if c not in REQUIRED_COLUMNS]
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({str(r["label"]) for r in rows if r["label"] not in index})
    if unknown:
        raise DataError(f"{dataset}: label(s) {unknown} are not among the classes {list(classes)}")
    df = pd.DataFrame([{**r, "label_index": index[r["label"]]} for r in rows], columns=order)
    df["patient_id"] = df["patient_id"].astype(str)
    df["label_index"] = df["label_index"].astype(int)
    df = df.sort_values("path", kind="stable").reset_index(drop=True)
    df.attrs["dataset"] = dataset
    df.attrs["classes"] = list(classes)
    return df


def choose(value: str, allowed: Sequence[str], what: str, dataset: str) -> str:
    if value not in allowed:
        raise DataError(f"{dataset}: {what}={value!r} is not one of {list(allowed)}")
    return value
