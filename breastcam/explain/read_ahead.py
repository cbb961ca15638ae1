"""Decode image files in order in background threads, a bounded number of bytes ahead.

``breastcam explain`` spends its first seconds in single-threaded Python (loading the model,
tracing the CAM graph) while a core is idle: :class:`ReadAhead` starts decoding the files then
(OpenCV releases the GIL), so the loop later finds them ready. One thread by default: the
single-threaded work it overlaps keeps the other core, and a second decoder only slowed it. Files are taken in the order they
were given; a file that fails to decode raises when it is taken, naming it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_BUDGET = 512 * 2 ** 20  # bytes of decoded pixels held ahead (about 500 BreakHis images)


class ReadAhead:
    """``take(path)`` returns the decoded RGB image of the next file, decoded ahead of time."""

    def __init__(self, files: Sequence[str | Path], *, budget: int = DEFAULT_BUDGET, workers: int = 1):
        from breastcam.data.decode import read_image

        self._read = read_image
        self.files = [Path(f) for f in files]
        self.budget = int(budget)
        self._held = 0
        self._room = threading.Condition()
        self._closed = False
        self._pool = ThreadPoolExecutor(max(1, int(workers)), thread_name_prefix="read-ahead")
        self._futures: dict[Path, Future] = {f: self._pool.submit(self._decode, f) for f in self.files}

    def _decode(self, path: Path) -> np.ndarray | None:
        with self._room:  # wait for room before decoding: at most one image per worker over budget
            self._room.wait_for(lambda: self._held < self.budget or self._closed)
            if self._closed:
                return None
        image = self._read(path)
        with self._room:
            self._held += image.nbytes
        return image

    def take(self, path: str | Path) -> np.ndarray:
        """The decoded image of ``path`` (waits for it); its bytes no longer count as ahead."""
        image = self._futures.pop(Path(path)).result()
        with self._room:
            self._held -= image.nbytes
            self._room.notify_all()
        return image

    def close(self) -> None:
        """Stop decoding (files not yet decoded are skipped) and free the threads."""
        with self._room:
            self._closed = True
            self._room.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "ReadAhead":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
