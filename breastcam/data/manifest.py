"""The manifest: one row per image, saved as CSV, made before any pixel is read.

Required columns (see ``docs/ARCHITECTURE.md``): ``path`` (relative to the dataset root, POSIX
separators), ``label`` (class name), ``label_index`` (int, index into the dataset's class list)
and ``patient_id`` (str, empty where the dataset has none). Loaders add dataset columns after
these; ``breastcam.data.splits`` adds ``split`` and ``fold`` at the end.

CSV round trips are exact: identifiers such as ``patient_id = "0001"`` stay strings, integer
columns stay integers, empty cells come back as empty strings (never NaN).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from breastcam.errors import DataError, MissingFileError

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "label", "label_index", "patient_id")

# Columns that are identifiers or free text: never converted to numbers when read back.
STRING_COLUMNS: frozenset[str] = frozenset(
    {"path", "label", "patient_id", "split", "subtype", "tumor_type", "slide", "refnum", "tissue",
     "abnormality", "severity", "lesions", "laterality", "view", "case", "image_name", "type",
     "split_protocol", "split_group", "slide_folder", "density", "birads", "findings", "tags",
     "mask", "mask2"}
)
# Written last, in this order, when present: how the split was made (one value on every row, so
# the file says it to any CSV reader), then the split itself.
SPLIT_INFO_COLUMNS: tuple[str, ...] = ("split_protocol", "split_group", "split_seed", "split_fold")
TRAILING_COLUMNS: tuple[str, ...] = (*SPLIT_INFO_COLUMNS, "split", "fold")


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_columns(df: pd.DataFrame, required: Iterable[str] = REQUIRED_COLUMNS) -> list[str]:
    return [c for c in required if c not in df.columns]


def check_columns(df: pd.DataFrame, source: str, required: Sequence[str] = REQUIRED_COLUMNS) -> None:
    """Raise ``ValueError`` naming ``source`` when a required column is absent."""
    missing = missing_columns(df, required)
    if missing:
        raise DataError(
            f"{source}: not a breastcam manifest, missing column(s) {missing} "
            f"(has {list(df.columns)}); a manifest needs {list(required)} — "
            "make one with `breastcam manifest DATASET ROOT --out FILE.csv`"
        )


def ordered_columns(columns: Iterable[str]) -> list[str]:
    """Stable column order: required columns, dataset columns as given, then split/fold."""
    columns = list(columns)
    middle = [c for c in columns if c not in REQUIRED_COLUMNS and c not in TRAILING_COLUMNS]
    tail = [c for c in TRAILING_COLUMNS if c in columns]
    return [c for c in REQUIRED_COLUMNS if c in columns] + middle + tail


def manifest_csv_bytes(df: pd.DataFrame) -> bytes:
    """The exact bytes ``write_manifest`` writes (UTF-8, ``\\n`` line ends, no index)."""
    check_columns(df, "manifest to write")
    out = df[ordered_columns(df.columns)]
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> str:
    """Write ``df`` as a manifest CSV (stable column order) and return the file's sha256."""
    data = manifest_csv_bytes(df)
    write_bytes_atomic(data, path)
    return hashlib.sha256(data).hexdigest()


def _maybe_numeric(column: pd.Series) -> pd.Series:
    values = column[column != ""]
    if values.empty:
        return column
    try:
        numbers = pd.to_numeric(values)
    except (ValueError, TypeError):
        return column
    if len(values) < len(column):
        # An empty cell in a numeric column: keep it missing rather than inventing a number.
        return pd.to_numeric(column.replace("", None))
    return numbers.reindex(column.index)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV written by :func:`write_manifest` (or by hand).

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file when it is absent, empty or
    lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"manifest {path} not found; make one with `breastcam manifest DATASET ROOT --out {path}`"
        )
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"manifest {path} is empty (no header row); regenerate it") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(
            f"manifest {path} is not a CSV text file ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
            "give the CSV written by `breastcam manifest` or `breastcam split`"
        ) from None
    check_columns(df, f"manifest {path}")
    for name in df.columns:
        if name not in STRING_COLUMNS:
            df[name] = _maybe_numeric(df[name])
    index = pd.to_numeric(df["label_index"].replace("", None), errors="coerce")
    bad = index.isna() | (index % 1 != 0)
    if bad.any():
        lines = [int(i) + 2 for i in df.index[bad][:5]]  # +2: header line, 1-based
        raise DataError(
            f"manifest {path}: column label_index must hold integers; bad value(s) on line(s) "
            f"{lines}: {df['label_index'][bad].head(5).tolist()}"
        )
    df["label_index"] = index.astype(int)
    return df
