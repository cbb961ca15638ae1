"""The papers' published numbers, typed into ``experiments/<paper>/published/*.csv``.

Each CSV is in long format, one row per printed number:

``paper, table, page, dataset, subset, model, metric, value, printed, unit, model_printed,
metric_printed, note``

``printed`` is the text exactly as the paper prints it (``"0.779/0.883"`` for paper A's F1
pairs, which become two rows: ``f1_minority`` and ``f1_weighted``); ``value`` is that number
as a float, normalised by ``unit`` (the unit of the printed number): percent becomes a fraction,
``million``/``giga`` become plain counts, everything else is kept as printed. So ``value`` is
directly comparable with what ``breastcam.evaluate`` computes. ``experiments/README.md``
documents the metric names and the file list.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, NamedTuple

import pandas as pd

from breastcam.errors import ConfigError, MissingFileError
from breastcam.resources import experiments_dir  # re-exported: the one way to find experiments/

REQUIRED_COLUMNS = ("paper", "table", "page", "dataset", "subset", "model", "metric", "value",
                    "printed")
COLUMNS = REQUIRED_COLUMNS + ("unit", "model_printed", "metric_printed", "note")
# Factor from the printed unit to ``value``; units not listed keep the printed number.
UNIT_SCALE = {"percent": 0.01, "million": 1e6, "giga": 1e9}
UNITS = ("fraction", "percent", "count", "seconds", "number", "million", "giga")

# Paper number -> folder under experiments/ (and the project's paper letter).
PAPER_DIRS = {"000": "dala", "001": "dala", "002": "dala", "003": "ernet", "004": "modres"}
_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50}
_TEXT_COLUMNS = ("paper", "table", "page", "dataset", "subset", "model", "metric", "printed",
                 "unit", "model_printed", "metric_printed", "note")


class PublishedTable(NamedTuple):
    paper: str  # "000", "001", "003", "004"
    table: str  # the table's number in arabic digits ("7" for paper 001's Table VII)
    path: Path


def _arabic(table: str | int) -> str:
    text = str(table).strip()
    text = re.sub(r"(?i)^table\s*", "", text)
    if text.isdigit():
        return str(int(text))
    upper = text.upper()
    if upper and set(upper) <= set(_ROMAN):
        total = 0
        for i, ch in enumerate(upper):
            v = _ROMAN[ch]
            total += -v if i + 1 < len(upper) and _ROMAN[upper[i + 1]] > v else v
        return str(total)
    raise ConfigError(f"table {table!r} is neither a number (7) nor a roman numeral (VII)")


def published_tables(root: str | os.PathLike | None = None) -> list[PublishedTable]:
    """Every published-numbers CSV under ``experiments/*/published/``, sorted by paper, table."""
    base = Path(root) if root is not None else experiments_dir()
    found = []
    for path in base.glob("*/published/*.csv"):
        match = re.fullmatch(r"(\d{3})_table(\d+)", path.stem)
        if match:
            found.append(PublishedTable(match.group(1), match.group(2), path))
    return sorted(found, key=lambda t: (t.paper, int(t.table)))


def read_published_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read one published CSV: text columns stay text (``printed`` keeps "0.8500"), ``value`` float."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"published table {path} not found")
    df = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; required: {list(REQUIRED_COLUMNS)}")
    try:
        df["value"] = pd.to_numeric(df["value"], errors="raise").astype(float)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path}: column 'value' must hold numbers ({err})") from None
    return df


def load_published(paper: str, table: str | int) -> pd.DataFrame:
    """The published numbers of ``table`` of ``paper`` (e.g. ``load_published("000", 6)``).

    ``paper`` is the paper's number in ``shared/papers`` ("000", "001", "003", "004");
    ``table`` is the table's number as an int, a string ("7") or a roman numeral ("VII").
    """
    paper = str(paper).zfill(3)
    if paper not in PAPER_DIRS:
        raise ConfigError(f"unknown paper {paper!r}; papers with published tables: "
                         f"{sorted(set(t.paper for t in published_tables()))}")
    number = _arabic(table)
    path = experiments_dir() / PAPER_DIRS[paper] / "published" / f"{paper}_table{number}.csv"
    if not path.is_file():
        have = [t.table for t in published_tables() if t.paper == paper]
        raise MissingFileError(
            f"no published table {table!r} of paper {paper} ({path}); typed tables: {have}")
    return read_published_csv(path)


def load_published_text(paper: str) -> pd.DataFrame:
    """The numbers ``paper``'s running text prints outside its tables (``<paper>_text.csv``).

    Their ``table`` is ``"text"`` and each ``note`` quotes the section. They are kept apart from
    the tables because they are not one table's cells: paper 003's Sec. 4.3.1 gives correct /
    test counts per magnification (the solver's test sizes) and Sec. 4.3.2 accuracies that
    contradict its Table 2 (the table is what breastcam compares with).
    """
    paper = str(paper).zfill(3)
    if paper not in PAPER_DIRS:
        raise ConfigError(f"unknown paper {paper!r}; papers: {sorted(PAPER_DIRS)}")
    path = experiments_dir() / PAPER_DIRS[paper] / "published" / f"{paper}_text.csv"
    if not path.is_file():
        raise MissingFileError(f"paper {paper} has no typed text numbers ({path})")
    return read_published_csv(path)


def load_published_files(paths: Iterable[str | os.PathLike], dataset: str | None = None,
                         root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Concatenate the published CSVs an experiment lists (paths relative to ``experiments/``).

    With ``dataset``, keep only that dataset's rows (a table such as paper 001's Table VIII holds
    two datasets and is listed by both the BACH and the Mini-DDSM experiment).
    """
    base = Path(root) if root is not None else experiments_dir()
    frames = [read_published_csv(base / p) for p in paths]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    if dataset is not None:
        df = df[df["dataset"] == dataset].reset_index(drop=True)
    return df


def printed_value(printed: str, metric: str, unit: str = "fraction") -> float:
    """The number ``printed`` stands for, normalised as ``value`` is (the check the tests run).

    For a printed pair ``"a/b"`` the metric picks the part: ``f1_minority`` is ``a``,
    ``f1_weighted`` is ``b``.
    """
    text = printed.strip().rstrip("%").replace(",", "")
    if "/" in text:
        parts = text.split("/")
        order = {"f1_minority": 0, "f1_weighted": 1}
        if metric not in order or len(parts) != 2:
            raise ConfigError(f"printed pair {printed!r} for metric {metric!r}: only "
                             "f1_minority/f1_weighted pairs are expected")
        text = parts[order[metric]]
    return float(text) * UNIT_SCALE.get(unit, 1.0)
