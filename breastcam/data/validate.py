"""Check a manifest and every file it names, and report ALL problems at once.

``validate_manifest(df, root)`` decodes every image with ``breastcam.data.decode.read_image``
(the decoder training uses, so "valid" means "the pipeline will read it") and returns a list of
:class:`Problem` — one per file and kind, none skipped. Kinds:

========================  ===============================================================
``missing``               the file does not exist under ``root``
``unreadable``            it exists but cannot be opened (a folder, no permission)
``zero-byte``             the file is empty
``unsupported-extension`` the decoder does not take this suffix
``truncated``             the file ends early (no PNG IEND / JPEG EOI / ...)
``corrupt``               an image format's header, but the data does not decode
``not-an-image``          the bytes are not any image format
``too-small``             fewer than ``decode.MIN_IMAGE_PIXELS`` pixels (e.g. 1x1)
``duplicate-path``        the same path on more than one row
``duplicate-content``     byte-identical files under different paths (a leak across splits)
``blank``                 an empty path or label cell
``unknown-label``         a label not among the classes
``label-index-mismatch``  ``label_index`` is not the class's position in the class list
``empty-class``           a class with no image
``bad-split``             a ``split`` value other than train/val/test
``outside-root``          a relative path that climbs above the data root (``../``)
``empty``                 a header without rows
========================  ===============================================================
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Sequence

import pandas as pd

from breastcam.console import progress
from breastcam.data.manifest import missing_columns
from breastcam.data.preflight import escapes_root

# Magic numbers of the formats the decoder knows, to tell "corrupt image" from "not an image".
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"P1", "PNM"), (b"P2", "PNM"), (b"P3", "PNM"), (b"P4", "PNM"), (b"P5", "PNM"), (b"P6", "PNM"),
)
SPLIT_VALUES = ("train", "val", "test")


@dataclass(frozen=True)
class Problem:
    path: str  # the file (as written in the manifest), or "" for a problem of the whole manifest
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path or '-'}\t{self.kind}\t{self.detail}"


def _sniff(head: bytes) -> str | None:
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _check_file(rel: str, full: Path, decode: ModuleType) -> tuple[list[Problem], str | None]:
    """Problems of one file and, when it could be read, the sha256 of its bytes."""
    if not full.exists():
        return [Problem(rel, "missing", f"no file at {full}")], None
    if not full.is_file():
        return [Problem(rel, "unreadable", f"{full} is not a regular file")], None
    try:
        data = full.read_bytes()
    except OSError as err:
        return [Problem(rel, "unreadable", f"cannot open {full}: {err.strerror or err}")], None
    if not data:
        return [Problem(rel, "zero-byte", "the file is empty (0 bytes)")], None
    digest = hashlib.sha256(data).hexdigest()
    supported = decode.SUPPORTED_EXTENSIONS
    if full.suffix.lower() not in supported:
        return [Problem(rel, "unsupported-extension",
                        f"{full.suffix or '(none)'} is not one of {', '.join(supported)}")], digest
    try:
        decode.read_image(full)
    except decode.BadImageError as err:
        fmt = _sniff(data[:16])
        if "truncated" in err.reason or "declares" in err.reason:
            kind = "truncated"
        elif "fewer than the minimum" in err.reason:
            kind = "too-small"
        elif fmt is None:
            kind = "not-an-image"
        else:
            kind = "corrupt"
        detail = err.reason if fmt or kind == "truncated" else f"{err.reason} (no known image signature)"
        return [Problem(rel, kind, detail)], digest
    return [], digest


def _class_list(df: pd.DataFrame, classes: Sequence[str] | None) -> list[str]:
    """The class list, from the caller, ``df.attrs`` or the rows themselves ("" for an index
    no row uses)."""
    if classes is not None:
        return list(classes)
    if df.attrs.get("classes"):
        return list(df.attrs["classes"])
    # Infer: for each index, the label most rows give it.
    pairs = df[df["label_index"].astype(int) >= 0].groupby(["label_index", "label"]).size()
    inferred: dict[int, str] = {}
    for (index, label), _ in pairs.sort_values(ascending=False, kind="stable").items():
        inferred.setdefault(int(index), str(label))
    size = max(inferred) + 1 if inferred else 0
    return [inferred.get(i, "") for i in range(size)]


def _label_problems(df: pd.DataFrame, classes: Sequence[str] | None) -> list[Problem]:
    problems: list[Problem] = []
    class_list = _class_list(df, classes)
    position = {name: i for i, name in enumerate(class_list) if name}
    for path, label, index in zip(df["path"], df["label"], df["label_index"]):
        label, index = str(label), int(index)
        if label == "":
            continue  # reported as blank
        if label not in position:
            problems.append(Problem(str(path), "unknown-label",
                                    f"label {label!r} is not one of {list(class_list)}"))
        elif position[label] != index:
            problems.append(Problem(str(path), "label-index-mismatch",
                                    f"label {label!r} has label_index {index}, expected {position[label]}"))
    counts = Counter(df["label"].astype(str))
    for i, name in enumerate(class_list):
        if not name:
            problems.append(Problem("", "empty-class", f"no image has label_index {i}"))
        elif counts[name] == 0:
            problems.append(Problem("", "empty-class", f"class {name!r} (index {i}) has no image"))
    return problems


def validate_manifest(
    df: pd.DataFrame,
    root: str | os.PathLike | None = None,
    *,
    classes: Sequence[str] | None = None,
    workers: int | None = None,
) -> list[Problem]:
    """Every problem of the manifest ``df`` whose paths are relative to ``root``.

    Args:
        df: a manifest (see ``breastcam.data.manifest``).
        root: the dataset root; default the current directory.
        classes: the class list in ``label_index`` order; default ``df.attrs["classes"]`` (set
            by the loaders), else inferred from the rows (then an unused index shows as an
            empty class, a class whose every row is missing cannot be seen).
        workers: threads decoding files (default: CPU count, at most 16).

    Returns the problems (empty when all is well): file problems in manifest order, then
    duplicates, labels, classes and splits.
    """
    from breastcam.data import decode  # imports TensorFlow: only when validating

    missing = missing_columns(df)
    if missing:
        return [Problem("", "bad-manifest", f"missing column(s) {missing}; has {list(df.columns)}")]
    base = Path(root) if root is not None else Path(".")
    paths = df["path"].astype(str).tolist()
    problems: list[Problem] = []
    if not paths:
        return [Problem("", "empty", "the manifest has a header but no rows: nothing to train or "
                                      "evaluate on; regenerate it with `breastcam manifest`")]

    blank = [i for i, p in enumerate(paths) if not p.strip()]
    for i in blank:
        problems.append(Problem("", "blank", f"row {i} has an empty path"))
    for rel in dict.fromkeys(p for p in paths if p.strip()):
        if escapes_root(rel):
            problems.append(Problem(rel, "outside-root", f"the path leaves the data root {base} "
                                    "('..' above it); manifest paths are relative to the root"))
    unique = list(dict.fromkeys(p for p in paths if p.strip() and not escapes_root(p)))
    workers = workers or min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(progress(pool.map(lambda rel: _check_file(rel, base / rel, decode), unique),
                                desc="validate", total=len(unique), unit="file"))

    by_digest: dict[str, list[str]] = {}
    for rel, (file_problems, digest) in zip(unique, results):
        problems.extend(file_problems)
        if digest is not None:
            by_digest.setdefault(digest, []).append(rel)

    for rel, count in Counter(p for p in paths if p.strip()).items():
        if count > 1:
            problems.append(Problem(rel, "duplicate-path", f"listed on {count} rows"))
    for digest, rels in by_digest.items():
        for rel in rels[1:]:
            problems.append(Problem(rel, "duplicate-content",
                                    f"same bytes as {rels[0]} (sha256 {digest[:12]})"))

    for path, label in zip(paths, df["label"].astype(str)):
        if not label.strip():
            problems.append(Problem(path, "blank", "empty label"))
    problems.extend(_label_problems(df, classes))

    if "split" in df.columns:
        for path, split in zip(paths, df["split"].astype(str)):
            if split not in SPLIT_VALUES:
                problems.append(Problem(path, "bad-split",
                                        f"split {split!r} is not one of {list(SPLIT_VALUES)}"))
    return problems


def format_problems(problems: Sequence[Problem], n_rows: int, n_classes: int | None = None) -> str:
    """The report ``breastcam validate`` prints: one line per problem (path, kind, detail; tab
    separated), then a summary line."""
    lines = [str(p) for p in problems]
    if problems:
        kinds = Counter(p.kind for p in problems)
        files = len({p.path for p in problems if p.path})
        lines.append(
            f"{len(problems)} problem(s) in {files} file(s) of {n_rows} row(s): "
            + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
        )
    else:
        classes = f", {n_classes} classes" if n_classes is not None else ""
        lines.append(f"OK: {n_rows} image(s){classes}; every file decoded, no duplicates, labels "
                     "consistent")
    return "\n".join(lines)
