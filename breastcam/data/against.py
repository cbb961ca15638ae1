"""Check a download against a reference manifest: missing, extra, misplaced, mislabelled files.

``validate_against(reference, root)`` lists the files under the release's top folders (the first
component of the reference paths, e.g. ``BreaKHis_v1``) and compares them with the reference rows,
then decodes the files that are present with :func:`breastcam.data.validate.validate_manifest`
(so unreadable, truncated and duplicate files are reported as by ``breastcam validate``). Every
problem is returned at once. Kinds added here:

==============  =================================================================================
``missing``     a reference image that is not under ``root``
``extra``       a file with an image suffix of the release that the reference does not list
``misplaced``   a file the reference lists under another folder of the same class
``mislabelled`` a file the reference lists under another class: the folder it sits in holds
                only images of another class in the reference (e.g. a benign image in
                ``malignant/``)
==============  =================================================================================

A class folder is recognised from the reference alone: a folder all of whose reference images
share one label. A file renamed in place is an ``extra`` file plus a ``missing`` one.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Sequence

import pandas as pd

from breastcam.data.validate import Problem, validate_manifest

# Columns of a reference manifest naming more files of the release (not images to classify).
SIDE_FILE_COLUMNS = ("mask", "mask2")
ORDER = ("missing", "extra", "misplaced", "mislabelled")


def locate_root(paths: Sequence[str], root: str | os.PathLike) -> Path:
    """The folder the reference paths are relative to, given ``root`` as the user names it.

    ``root`` may be that folder or the release's top folder inside it (``/data/BreaKHis_v1``
    for paths ``BreaKHis_v1/...``) or any folder below the top folder on the reference paths.
    """
    root = Path(root)
    tops = {PurePosixPath(p).parts[0] for p in paths if p}
    if any((root / t).exists() for t in tops):
        return root
    for depth in range(1, len(root.parts)):
        candidate = root.parents[depth - 1]
        below = PurePosixPath(*root.parts[len(root.parts) - depth:]).as_posix()
        if any(p.startswith(below + "/") for p in paths):
            return candidate
    return root


def _files_under(root: Path, tops: set[str], suffixes: set[str]) -> list[str]:
    found = []
    for top in sorted(tops):
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                    found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def _folder_labels(paths: Sequence[str], labels: Sequence[str]) -> dict[str, set[str]]:
    """Every folder on the reference paths -> the labels of the reference images below it."""
    below: dict[str, set[str]] = defaultdict(set)
    for path, label in zip(paths, labels):
        for parent in PurePosixPath(path).parents:
            if str(parent) != ".":
                below[str(parent)].add(label)
    return below


def _folder_class(path: str, below: dict[str, set[str]]) -> str | None:
    for parent in PurePosixPath(path).parents:
        labels = below.get(str(parent))
        if labels is not None:
            return next(iter(labels)) if len(labels) == 1 else None
    return None


def compare_tree(reference: pd.DataFrame, root: str | os.PathLike) -> tuple[list[Problem], list[str]]:
    """(missing / extra / misplaced / mislabelled problems, reference paths present under root)."""
    paths = reference["path"].astype(str).tolist()
    labels = reference["label"].astype(str).tolist()
    base = Path(root)
    tops = {PurePosixPath(p).parts[0] for p in paths}
    suffixes = {PurePosixPath(p).suffix.lower() for p in paths}
    listed = set(paths)
    side = {str(v) for c in SIDE_FILE_COLUMNS if c in reference.columns
            for v in reference[c] if str(v)}
    on_disk = _files_under(base, tops, suffixes)
    present = [p for p in on_disk if p in listed]
    present_set = set(present)

    problems = [Problem(p, "missing", f"no file at {base / p}") for p in paths
                if p not in present_set]
    by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path, label in zip(paths, labels):
        by_name[PurePosixPath(path).name].append((path, label))
    below = _folder_labels(paths, labels)
    for path in on_disk:
        if path in listed or path in side:
            continue
        folder_class = _folder_class(path, below)
        known = by_name.get(PurePosixPath(path).name)
        if known:
            ref_path, ref_label = known[0]
            if folder_class is not None and folder_class != ref_label:
                problems.append(Problem(path, "mislabelled",
                                        f"a {ref_label} image (reference: {ref_path}) in a folder "
                                        f"of {folder_class} images"))
            else:
                problems.append(Problem(path, "misplaced", f"the reference has it at {ref_path}"))
        else:
            where = f" in a folder of {folder_class} images" if folder_class else ""
            problems.append(Problem(path, "extra", f"not in the reference manifest{where}"))
    return problems, present


def validate_against(
    reference: pd.DataFrame,
    root: str | os.PathLike,
    *,
    workers: int | None = None,
    decode: bool = True,
) -> tuple[list[Problem], Path, int]:
    """Every problem of the download under ``root`` compared with ``reference``.

    Returns (problems, the resolved root, number of reference images present). Problems of the
    tree come first (:data:`ORDER`), then those of decoding the present files. Classes with no
    image present are not problems here (a partial copy reports its absent images as missing).
    """
    base = locate_root(reference["path"].astype(str).tolist(), root)
    problems, present = compare_tree(reference, base)
    problems.sort(key=lambda p: ORDER.index(p.kind))
    if decode and present:
        rows = reference[reference["path"].isin(present)]
        checked = validate_manifest(rows, base, workers=workers)
        problems += [p for p in checked if p.kind not in ("empty-class", "missing")]
    return problems, base, len(present)


def format_against(problems: Sequence[Problem], n_reference: int, n_present: int, *,
                   allow_partial: bool = False, max_listed: int = 20) -> str:
    """The report: problems grouped by kind (``max_listed`` lines per kind, 0: all), then a
    summary line."""
    groups: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        groups[p.kind].append(p)
    lines = []
    for kind, items in groups.items():
        shown = items if max_listed <= 0 else items[:max_listed]
        lines += [str(p) for p in shown]
        if len(shown) < len(items):
            lines.append(f"... and {len(items) - len(shown)} more {kind} (--max-listed 0 lists all)")
    counts = ", ".join(f"{len(v)} {k}" for k, v in groups.items()) or "no problem"
    lines.append(f"{n_present} of {n_reference} reference image(s) present; {counts}"
                 + (" (missing allowed: --allow-partial)" if allow_partial and groups.get("missing")
                    else ""))
    return "\n".join(lines)


def failed(problems: Sequence[Problem], allow_partial: bool) -> bool:
    """Whether the check fails: any problem, missing files excepted with ``allow_partial``."""
    return any(not (allow_partial and p.kind == "missing") for p in problems)
