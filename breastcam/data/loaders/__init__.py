"""One loader per dataset: a dataset folder -> a manifest (pandas DataFrame), no pixel read.

``load_manifest("breakhis", root, magnification=40)`` dispatches to
``breastcam.data.loaders.breakhis.load``; each module's docstring documents the folder layout it
expects. ``DATASETS`` maps a name to its loader and its default class order (the order of
``label_index``; the positive class of binary metrics is the last).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from breastcam.errors import DataError
from breastcam.data.loaders import bach, breakhis, cddcesm, folder, mias, miniddsm


@dataclass(frozen=True)
class DatasetLoader:
    name: str
    load: Callable[..., pd.DataFrame]
    classes: tuple[str, ...]  # default class order; options may change it (see ``classes_for``)
    classes_for: Callable[..., tuple[str, ...]] | None = None

    def options(self) -> list[str]:
        """Keyword options (filters) the loader accepts."""
        params = inspect.signature(self.load).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


DATASETS: dict[str, DatasetLoader] = {
    "breakhis": DatasetLoader("breakhis", breakhis.load, breakhis.CLASSES, breakhis.classes_for),
    "bach": DatasetLoader("bach", bach.load, bach.CLASSES),
    "miniddsm": DatasetLoader("miniddsm", miniddsm.load, miniddsm.CLASSES),
    "cddcesm": DatasetLoader("cddcesm", cddcesm.load, cddcesm.CLASSES, cddcesm.classes_for),
    "mias": DatasetLoader("mias", mias.load, mias.CLASSES, mias.classes_for),
    # Classes of a folder dataset are its sub-folders: known only once loaded.
    "folder": DatasetLoader("folder", folder.load, ()),
}


def get_loader(dataset: str) -> DatasetLoader:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}") from None


def load_manifest(dataset: str, root: str | os.PathLike, **filters: object) -> pd.DataFrame:
    """Manifest of ``dataset`` (one of ``DATASETS``) found under ``root``.

    ``filters`` are the loader's keyword options, e.g. ``magnification=40`` or
    ``label="subtype"`` for BreakHis, ``classes="binary"`` for MIAS; see the loader modules.
    ``None`` values are dropped (they mean "the loader's default").
    """
    loader = get_loader(dataset)
    filters = {k: v for k, v in filters.items() if v is not None}
    unknown = sorted(set(filters) - set(loader.options()))
    if unknown:
        raise DataError(
            f"{dataset}: option(s) {unknown} do not apply; {dataset} accepts {loader.options()}"
        )
    return loader.load(root, **filters)


mias_lesion_mask = mias.mias_lesion_mask

__all__ = ["DATASETS", "DatasetLoader", "get_loader", "load_manifest", "mias_lesion_mask"]
