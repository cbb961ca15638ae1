"""The papers' remaining deviations, as data: ``experiments/<paper>/deviations.yaml``.

Each file is a list of entries (``what, experiments, paper, section, breastcam, reason,
source``); ``experiments`` names the experiments an entry concerns, or ``[all]``. The report's
"Deviations from the paper" section shows :func:`deviations_for` the experiment, so a deviation
is written once, with its paper quote, reason and the place in the code (``source``:
``path#name``, relative to the repository root) where breastcam makes the choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import yaml

from breastcam.errors import ConfigError
from breastcam.report.published import experiments_dir

FILE_NAME = "deviations.yaml"
FIELDS = ("what", "experiments", "paper", "section", "breastcam", "reason", "source")
#: Experiment paper letter -> folder under experiments/.
PAPER_FOLDERS = {"A": "dala", "B": "ernet", "C": "modres"}


def load_deviations(folder: str, root: str | Path | None = None) -> list[dict]:
    """The entries of ``experiments/<folder>/deviations.yaml``, checked; [] when there is none."""
    path = Path(root or experiments_dir()) / folder / FILE_NAME
    if not path.is_file():
        return []
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: must be a YAML list of deviations (keys {list(FIELDS)})")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or set(entry) != set(FIELDS):
            got = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
            raise ConfigError(f"{path}: entry {i} must have exactly the keys {list(FIELDS)}, got {got}")
        if not isinstance(entry["experiments"], list) or not entry["experiments"]:
            raise ConfigError(f"{path}: entry {i} ({entry['what']!r}): experiments must be a non-empty "
                             "list of experiment names or [all]")
        empty = [k for k in FIELDS if k != "experiments" and not str(entry[k]).strip()]
        if empty:
            raise ConfigError(f"{path}: entry {i} ({entry['what']!r}): empty {empty}")
        out.append({k: entry[k] if k == "experiments" else str(entry[k]) for k in FIELDS})
    return out


def deviations_for(experiment: Mapping, root: str | Path | None = None) -> list[dict]:
    """The entries of the experiment's paper that name it (or ``all``)."""
    folder = PAPER_FOLDERS.get(str(experiment.get("paper", "")))
    if folder is None:
        return []
    name = str(experiment.get("name", ""))
    return [d for d in load_deviations(folder, root) if "all" in d["experiments"] or name in d["experiments"]]
