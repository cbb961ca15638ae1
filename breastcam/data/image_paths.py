"""The image files a command was given: files as they are, folders searched for images.

``explain``, ``sanity`` and ``predict`` take ``--images`` the same way; each writes outputs
named by the file's stem, so two files with one stem are refused before anything runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from breastcam.errors import ConfigError, MissingFileError


def expand_image_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given, folders expanded (recursively, sorted) to their image files."""
    from breastcam.data.decode import SUPPORTED_EXTENSIONS

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_EXTENSIONS)
            if not found:
                raise MissingFileError(f"no image files ({', '.join(SUPPORTED_EXTENSIONS)}) under {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise MissingFileError(f"image path {p} does not exist")
    seen: dict[str, Path] = {}
    for p in out:
        if p.stem in seen and seen[p.stem] != p:
            raise ConfigError(f"two images share the name {p.stem!r} ({seen[p.stem]} and {p}); "
                              "their output files would overwrite each other: give them separately")
        seen[p.stem] = p
    return out
