"""Checking nested YAML mappings (run configs, experiments) key by key, at every depth.

Why a schema at all: a typo such as ``train.epoch`` or ``train.optimiser`` used to be merged
into the config and silently ignored, so the run used the default. Every key is now looked up;
an unknown one is rejected with the closest valid key (``difflib``), a value of the wrong type
names the key, the value and the expected type.

A schema is built from the defaults themselves (:func:`schema_from_defaults`): each default's
type is the key's type, a non-empty dict default is a section with its own keys. Only where a
default cannot say it (``None`` defaults, unions such as "an int or a list") does the caller
give the type, so the valid keys are never written down twice.

A schema is a dict ``key -> kinds``; ``kinds`` is a tuple of Python types and/or nested schemas
(a dict: "a mapping with these keys"). The key ``"*"`` in a schema admits any further key
(keyword arguments passed through, e.g. Keras optimizer options). This module imports only
:mod:`breastcam.errors`: every layer may use it.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping

from breastcam.errors import ConfigError

ANY = object  # kind that admits every value
OPEN: dict = {"*": (ANY,)}  # a mapping with any keys
_NONE = type(None)


def schema_from_defaults(defaults: Mapping, types: Mapping[str, tuple] | None = None,
                         open_sections: tuple[str, ...] = (), prefix: str = "") -> dict:
    """The schema of ``defaults``: every key with the type of its default value.

    ``types`` gives the kinds of dotted keys whose default does not tell (a ``None`` default
    must be listed, else this raises: a silently untyped key would defeat the check);
    ``open_sections`` are dotted keys of dict defaults that also admit keys of their own.
    """
    types = dict(types or {})
    schema: dict = {}
    for key, value in defaults.items():
        dotted = f"{prefix}{key}"
        if dotted in types:
            schema[key] = tuple(types[dotted])
        elif isinstance(value, Mapping) and value:
            sub = schema_from_defaults(value, types, open_sections, f"{dotted}.")
            if dotted in open_sections:
                sub["*"] = (ANY,)
            schema[key] = (sub,)
        elif isinstance(value, Mapping):
            schema[key] = (OPEN,)
        elif value is None:
            raise TypeError(f"schema: give the type of {dotted} (its default is None)")
        elif isinstance(value, float):
            schema[key] = (float, int)
        else:
            schema[key] = (type(value),)
    return schema


def _kind_name(kind: Any) -> str:
    if isinstance(kind, dict):
        return "a mapping"
    if kind is _NONE:
        return "null"
    if kind is ANY:
        return "anything"
    return {"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false",
            "list": "a list", "dict": "a mapping"}.get(kind.__name__, kind.__name__)


def _fits(value: Any, kind: Any) -> bool:
    if kind is ANY:
        return True
    if isinstance(kind, dict):
        return isinstance(value, Mapping)
    if isinstance(value, bool) and kind in (int, float):
        return False  # YAML `true` is not a number
    return isinstance(value, kind)


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def unknown_key_message(dotted: str, valid: list[str], source: str = "") -> str:
    """``unknown key train.epoch - did you mean train.epochs?`` plus the valid keys there."""
    parent, _, key = dotted.rpartition(".")
    prefix = f"{parent}." if parent else ""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f" - did you mean {prefix}{close[0]}?" if close else ""
    section = f"under {parent}" if parent else "at the top level"
    return (f"{_where(source)}unknown key {dotted}{hint} Valid keys {section}: "
            f"{', '.join(sorted(valid))}.")


def check_value(value: Any, kinds: tuple, dotted: str, source: str = "") -> None:
    """Raise :class:`ConfigError` unless ``value`` fits one of ``kinds`` (nested: recursively)."""
    for kind in kinds:
        if _fits(value, kind):
            if isinstance(kind, dict):
                check_mapping(value, kind, source, f"{dotted}.")
            return
    expected = " or ".join(dict.fromkeys(_kind_name(k) for k in kinds))
    raise ConfigError(f"{_where(source)}{dotted}={value!r} is {_kind_name(type(value))}; "
                      f"expected {expected}.")


def check_mapping(mapping: Mapping, schema: Mapping, source: str = "", prefix: str = "") -> None:
    """Check every key of ``mapping`` (unknown keys, value types) at every depth."""
    valid = [k for k in schema if k != "*"]
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            if "*" not in schema:
                raise ConfigError(unknown_key_message(dotted, valid, source))
            check_value(value, schema["*"], dotted, source)
            continue
        check_value(value, schema[key], dotted, source)


def check_path(dotted: str, schema: Mapping, source: str = "") -> None:
    """Check that the dotted key of an override (``train.epochs``) exists in ``schema``."""
    node: Mapping | None = schema
    done: list[str] = []
    for key in dotted.split("."):
        if node is None:
            raise ConfigError(f"{_where(source)}{'.'.join(done)} is not a section; "
                              f"{dotted} cannot be set")
        if key not in node:
            if "*" in node:
                return
            raise ConfigError(unknown_key_message(".".join([*done, key]),
                                                  [k for k in node if k != "*"], source))
        done.append(key)
        sections = [k for k in node[key] if isinstance(k, dict)]
        node = sections[0] if sections else None
