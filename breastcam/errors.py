"""The one error contract: every error breastcam raises on purpose derives from ``BreastcamError``.

Why one base: the CLI prints a ``BreastcamError`` as one paragraph (the message already names the
file or value and the way forward) and exits 1, without a traceback unless ``--debug``; anything
else is a bug and keeps its traceback. Subclasses also derive from the matching built-in
(``ValueError``, ``FileNotFoundError`` ...) so existing ``except`` clauses keep working.

This module imports nothing from breastcam: every layer may raise these.
"""

from __future__ import annotations


class BreastcamError(Exception):
    """Base of breastcam's own errors. ``str(err)`` is the complete user-facing message."""


class UsageError(BreastcamError, ValueError):
    """A command line or call that cannot mean anything (CLI exit code 2)."""


class ConfigError(BreastcamError, ValueError):
    """A run/experiment config key or value that is unknown or of the wrong type."""


class DataError(BreastcamError, ValueError):
    """A manifest, split or dataset tree that does not fit what the code needs."""


class ModelFileError(BreastcamError, ValueError):
    """A model or weights file that cannot be loaded as a breastcam model."""


class RunStateError(BreastcamError, RuntimeError):
    """A run directory in a state that forbids the action (claimed, unfinished, exists)."""


class MissingFileError(BreastcamError, FileNotFoundError):
    """An input file or folder the user named (config, manifest, model, run) does not exist."""


class OutputExistsError(BreastcamError, FileExistsError):
    """An output file or folder already exists and would be replaced (pass force to replace)."""
