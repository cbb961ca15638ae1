"""The check every command that reads a dataset runs before its first step.

Why: a corrupt file met mid-epoch inside ``tf.data`` stops a run hours in, under a TensorFlow
error that need not name the file. ``train``, ``evaluate``, ``explain`` and ``reproduce`` call
:func:`preflight` first: every file is checked (in threads) and ALL bad files are reported at
once, or left out and listed when the config says ``on_bad_image: skip``.

The check is cheap where the format allows it, a full decode where it does not:

- every file: exists, is not empty, has a supported extension, starts with an image signature;
- PNG: the chunk structure and every chunk's CRC (a corrupt byte in the middle fails its CRC),
  ``IEND`` at the end, the size in ``IHDR``;
- JPEG, GIF, BMP: the end marker / declared size (``breastcam.data.decode``'s rule);
- TIFF, PNM and anything else decoded by OpenCV: a full decode (no end marker to look at).

An image of fewer than :data:`breastcam.data.decode.MIN_IMAGE_PIXELS` pixels (a 1x1
placeholder) is bad: resizing it to the model's input would invent the whole picture.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from breastcam.console import progress
from breastcam.errors import DataError

_LIST_LIMIT = 30  # bad files spelled out in one message


def _png_problem(data: bytes) -> str | None:
    """Why a PNG's chunk structure is broken (truncated, bad CRC), or ``None``."""
    pos = 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        name = ctype.decode("latin-1")
        if end > len(data):
            return f"the PNG chunk {name!r} runs past the end: the file is truncated"
        if zlib.crc32(data[pos + 4:pos + 8 + length]) != struct.unpack_from(">I", data, end - 4)[0]:
            return f"the PNG chunk {name!r} at byte {pos} fails its CRC: the data is corrupt"
        if ctype == b"IEND":
            return None
        pos = end
    return "the PNG has no IEND chunk: the file is truncated"


def check_image_file(path: str | os.PathLike) -> str | None:
    """Why ``path`` would fail (or mislead) the pipeline, or ``None`` when it passes."""
    from breastcam.data import decode  # TensorFlow / OpenCV: only when checking

    path = Path(path)
    if path.suffix.lower() not in decode.SUPPORTED_EXTENSIONS:
        supported = ", ".join(decode.SUPPORTED_EXTENSIONS)
        return f"unsupported extension {path.suffix!r}; supported: {supported}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "the file does not exist"
    except OSError as err:
        return f"the file cannot be read ({err.strerror or err})"
    if not data:
        return "the file is empty (0 bytes)"
    fmt = decode._format(data)
    reason = decode._truncation(data, fmt)
    if reason:
        return reason
    if fmt == "png":
        reason = _png_problem(data)
        if reason:
            return reason
        size = decode.declared_size(data)
        if size and decode.too_small(size[1], size[0]):
            return decode.too_small_reason(size[1], size[0])
        if size and decode.too_large(*size):
            return decode.too_large_reason(*size)
        return None
    if fmt in ("jpeg", "gif", "bmp"):
        size = decode.declared_size(data)
        return decode.too_large_reason(*size) if size and decode.too_large(*size) else None
    try:  # TIFF, PNM, unknown bytes: no end marker, decode the whole file
        decode.read_image(path)
    except decode.BadImageError as err:
        return err.reason
    return None


def find_bad_files(paths: list[str], shown: list[str] | None = None, *,
                   workers: int | None = None) -> list[tuple[str, str]]:
    """``(shown path, reason)`` of every bad file of ``paths``, checked in threads."""
    shown = shown if shown is not None else paths
    workers = workers or min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(progress(pool.map(check_image_file, paths), desc="check files",
                                total=len(paths), unit="file", min_items=64))
    return [(s, r) for s, r in zip(shown, reasons) if r is not None]


SKIP_HINT = ("Replace or remove them (`breastcam validate MANIFEST` lists every problem), or set "
             "data.on_bad_image: skip to leave them out (they are recorded in run_info.json).")


def bad_files_message(bad: list[tuple[str, str]], total: int, where: str,
                      hint: str = SKIP_HINT) -> str:
    """One paragraph naming every bad file (up to a limit) and the way forward."""
    listed = "; ".join(f"{p}: {r}" for p, r in bad[:_LIST_LIMIT])
    more = f"; ... and {len(bad) - _LIST_LIMIT} more" if len(bad) > _LIST_LIMIT else ""
    return f"{len(bad)} of {total} image file(s) of {where} cannot be used: {listed}{more}. {hint}"


def escapes_root(rel: str) -> bool:
    """A relative manifest path that climbs above the data root (``../x``, ``a/../../x``)."""
    if os.path.isabs(rel):
        return False  # absolute paths are allowed (paper C's offline copies are written so)
    depth = 0
    for part in Path(rel).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


def preflight(df: pd.DataFrame, root: str | os.PathLike | None, *, on_bad_image: str = "raise",
              where: str = "the manifest", workers: int | None = None
              ) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Check every file of ``df`` before any step; return the rows to use and the skipped ones.

    ``on_bad_image="raise"``: any bad file raises :class:`DataError` listing all of them.
    ``"skip"``: bad rows are dropped and returned as ``(path, reason)`` for the run's record;
    if no row is left, that is an error too.
    """
    from breastcam.data.pipeline import image_paths

    if on_bad_image not in ("raise", "skip"):
        raise DataError(f"on_bad_image={on_bad_image!r}; choose raise or skip")
    shown = df["path"].astype(str).tolist()
    outside = [p for p in dict.fromkeys(shown) if escapes_root(p)]
    if outside:
        raise DataError(f"{len(outside)} path(s) of {where} leave the data root {root} ('..' above it): "
                        f"{', '.join(outside[:5])}; manifest paths are relative to the root: fix the manifest")
    unique = list(dict.fromkeys(zip(shown, image_paths(df, root))))
    bad = find_bad_files([full for _, full in unique], [s for s, _ in unique], workers=workers)
    if not bad:
        return df, []
    if all(reason == "the file does not exist" for _, reason in bad) and len(bad) == len(unique):
        raise DataError(f"none of the {len(unique)} image file(s) of {where} exists under "
                        f"{root}: check the dataset root (data.root in the run config, "
                        f"`evaluate --data-root`, `reproduce --data-dir`); e.g. {bad[0][0]}")
    if on_bad_image == "raise" or len(bad) == len(unique):
        raise DataError(bad_files_message(bad, len(unique), where))
    keep = ~df["path"].astype(str).isin({p for p, _ in bad})
    return df[keep.to_numpy()], bad
