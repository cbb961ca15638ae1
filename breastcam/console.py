"""What the command line shows: progress bars, TensorFlow's start-up noise, and error messages.

Why here and not in ``cli.py``: library loops (validate, evaluate, reproduce, models) show
progress through :func:`progress`, and the CLI's ``--quiet`` turns every bar off in one place.
This module imports nothing from breastcam but :mod:`breastcam.errors` (every layer may use it)
and never imports TensorFlow at module level.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterable, Iterator, TypeVar

from breastcam.errors import BreastcamError

T = TypeVar("T")
_ENABLED = True
# TensorFlow / absl C++ logging: only fatal lines. Its ERROR level carries lines a user cannot act
# on (e.g. "NodeDef mentions attribute use_unbounded_threadpool ..." at every first epoch: a
# tf.data graph attribute the runtime ignores); real failures reach Python as exceptions, which
# breastcam reports. OpenCV likewise logs "[ERROR] imdecode_ ... can't read data" for a corrupt
# file that breastcam then names in its own message. `--verbose` keeps everything.
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "ABSL_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
    "OPENCV_LOG_LEVEL": "FATAL",
}


def set_progress(enabled: bool) -> None:
    """Turn every :func:`progress` bar on or off (the CLI's ``--quiet``)."""
    global _ENABLED
    _ENABLED = bool(enabled)


def progress_enabled() -> bool:
    return _ENABLED


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None,
             unit: str = "it", min_items: int = 1) -> Iterable[T]:
    """``iterable`` wrapped in a tqdm bar on stderr, unless bars are off or it is short.

    Bars also stay off when stderr is not a terminal (tqdm's ``disable=None``), so logs and
    captured output hold no carriage-return noise.
    """
    if total is None:
        total = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
    if not _ENABLED or (total is not None and total < min_items):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=None, leave=False)


@contextlib.contextmanager
def silenced_fd2() -> Iterator[None]:
    """Redirect the process's file descriptor 2 (C++ stderr) to a temporary file, then restore.

    TensorFlow's C++ and absl logs (oneDNN notice, CUDA probing) are written straight to fd 2,
    past ``sys.stderr`` and past ``TF_CPP_MIN_LOG_LEVEL`` for the lines printed before absl is
    initialised. If the body fails, what was captured is written back, so nothing that explains
    a failure is lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


def quiet_tensorflow() -> None:
    """Import TensorFlow and probe its devices with fd 2 silenced (no start-up lines); OpenCV's
    logging down to fatal lines."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if "cv2" in sys.modules and os.environ["OPENCV_LOG_LEVEL"] == QUIET_ENV["OPENCV_LOG_LEVEL"]:
        cv2_logging = sys.modules["cv2"].utils.logging  # imported already: the variable came too late
        cv2_logging.setLogLevel(cv2_logging.LOG_LEVEL_FATAL)
    if "tensorflow" in sys.modules:
        return
    with silenced_fd2():
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA probing logs here, not at import


# --- errors ----------------------------------------------------------------------------------



def _error_names(cls: type = BreastcamError) -> set[str]:
    names = {cls.__name__}
    for sub in cls.__subclasses__():
        names |= _error_names(sub)
    return names


def find_breastcam_error(err: BaseException) -> BaseException | None:
    """The :class:`BreastcamError` behind ``err``: itself, one in its cause/context chain, or
    (for errors TensorFlow re-raised as its own, e.g. from inside ``tf.data``) one whose
    message is quoted in the text. ``None`` when there is none (a bug: keep the traceback)."""
    seen = set()
    node: BaseException | None = err
    while node is not None and id(node) not in seen:
        if isinstance(node, BreastcamError):
            return node
        seen.add(id(node))
        node = node.__cause__ or node.__context__
    if _is_tensorflow_error(err):
        # TensorFlow quotes the Python error of a tf.numpy_function as "<Class>: <message>".
        names = "|".join(sorted(_error_names(), key=len, reverse=True))
        match = re.search(rf"\b(?:{names}): (.+?)(?:\n\n|\n\s*\[\[|$)", str(err), re.S)
        if match:
            return BreastcamError(match.group(1).strip())
    return None


def _is_tensorflow_error(err: BaseException) -> bool:
    return type(err).__module__.startswith(("tensorflow", "keras"))


def one_paragraph(text: str) -> str:
    """A message on one paragraph: blank lines and line breaks folded into spaces."""
    return " ".join(text.split())


# --- warnings --------------------------------------------------------------------------------

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@contextlib.contextmanager
def short_warnings(command: str) -> Iterator[None]:
    """breastcam's own warnings as ``breastcam CMD: warning: MESSAGE`` lines while the body runs.

    Python's default shows the file, the line number and the line of breastcam source that
    warned: noise for a command-line user, who needs the message. Warnings of other packages
    keep their form (their location helps a bug report). Only the formatting changes, so a
    caller recording warnings (``warnings.catch_warnings(record=True)``, ``pytest.warns``)
    still receives them; the previous formatter comes back after.
    """
    import warnings

    default = warnings.formatwarning

    def short(message, category, filename, lineno, line=None):
        if not os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
            return default(message, category, filename, lineno, line)
        return f"breastcam {command}: warning: {one_paragraph(str(message))}\n"

    warnings.formatwarning = short
    try:
        yield
    finally:
        warnings.formatwarning = default
