"""The papers' split protocols, image-level as published or grouped by patient (ours).

| protocol | ratios (train/val/test) | folds | paper |
|---|---|---|---|
| ``dala`` | 0.6 / 0.1 / 0.3 | - | DALAResNet50 (papers 000/001), Table VI sizes |
| ``ernet`` | 0.7 (train+val) / 0.3 | 5 inside the 70 % | ERNet (paper 003) |
| ``modres`` | 0.6 / 0.2 / 0.2 | - | Modified ResNet50 (paper 004) |

Image level (``group=None``, as the papers did) the split is stratified by ``label`` with
scikit-learn's ``train_test_split`` in two steps (test off first, then validation); the sizes are
``train = round(r_train * n)``, ``val = floor(r_val * n)``, ``test`` the rest, which reproduces the
DALAResNet50 paper's Table VI exactly (e.g. BreakHis 40X, n = 1995 -> 1197 / 199 / 599).

Patient level (``group="patient"``) no patient is in two splits. The patients are first dealt,
in seeded random order, into up to 10 folds balanced per class (as ``StratifiedGroupKFold`` does,
but with a shuffle that really depends on the seed); the folds are assigned to splits by trying
every assignment, then single patients are moved between splits while that helps. Both
steps minimise the same cost: the distance between each split's per-class image counts and the
target ``ratio * class count``, so sizes and class balance are matched together, as closely as
whole patients allow.

ERNet's folds: ``StratifiedKFold(5)`` (``StratifiedGroupKFold(5)`` when grouped) over the 70 %;
``fold`` is the fold in which a row is validation, -1 on test rows, and every non-test row has
``split = "train"``: :func:`fold_view` turns fold ``k`` into train/val.

Everything is deterministic from ``seed``; nothing else is random. Small classes never crash
with scikit-learn's raw error: the split falls back (less or no stratification) and a warning
says which class was too small and what was done.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from breastcam.data.manifest import (SPLIT_INFO_COLUMNS, check_columns, manifest_csv_bytes,
                                     write_bytes_atomic)
from breastcam.errors import DataError, OutputExistsError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Protocol:
    name: str
    ratios: dict[str, float]  # split -> fraction of the images; sums to 1
    folds: int  # cross-validation folds inside train+val (0: none)
    paper: str


PROTOCOLS: dict[str, Protocol] = {
    "dala": Protocol("dala", {"train": 0.6, "val": 0.1, "test": 0.3}, 0,
                     "DALAResNet50 (Liu et al.): stratified random 6:1:3"),
    "ernet": Protocol("ernet", {"train": 0.7, "val": 0.0, "test": 0.3}, 5,
                      "ERNet (Chandana Mani & Kamalakannan): 70/30, 5-fold CV in the 70 %"),
    "modres": Protocol("modres", {"train": 0.6, "val": 0.2, "test": 0.2}, 0,
                       "Modified ResNet50 (Gharaibeh et al.): 60/20/20"),
}

# Folds the patients are first dealt into for a grouped split (all 3**K assignments are tried).
_GROUP_FOLDS = 10


class SplitWarning(UserWarning):
    """A split could not follow its protocol exactly (too few images or patients of a class)."""


def get_protocol(protocol: str) -> Protocol:
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise DataError(f"unknown split protocol {protocol!r}; choose one of "
                         f"{sorted(PROTOCOLS)}") from None


def split_sizes(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """Image counts per split: ``train = round(r*n)``, ``val = floor(r*n)``, test the rest.

    A split with a positive ratio gets at least one image when ``n`` allows it.
    """
    train = int(np.floor(ratios["train"] * n + 0.5))
    val = int(np.floor(ratios["val"] * n + 1e-9))
    sizes = {"train": train, "val": val, "test": n - train - val}
    for name in ("test", "val"):
        if ratios[name] > 0 and sizes[name] == 0 and sizes["train"] > 1:
            sizes[name], sizes["train"] = 1, sizes["train"] - 1
    return sizes


def _strata(df: pd.DataFrame, stratify: str | Sequence[str]) -> np.ndarray:
    columns = [stratify] if isinstance(stratify, str) else list(stratify)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"cannot stratify by {missing}: no such column (has {list(df.columns)})")
    key = df[columns[0]].astype(str)
    for column in columns[1:]:
        key = key + "|" + df[column].astype(str)
    return key.to_numpy(dtype=object)


def _warn(message: str) -> None:
    # Point the warning at the caller of this module, however deep the call came from.
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        level, frame = level + 1, frame.f_back
    warnings.warn(message, SplitWarning, stacklevel=level)


def _take(idx: np.ndarray, y: np.ndarray, size: int, seed: int, step: str) -> tuple[np.ndarray, np.ndarray]:
    """(rest, taken): ``size`` of ``idx`` taken at random, stratified by ``y`` when possible."""
    from sklearn.model_selection import train_test_split

    if size <= 0:
        return idx, idx[:0]
    if size >= len(idx):
        return idx[:0], idx
    labels, counts = np.unique(y, return_counts=True)
    strata = y.copy()
    rare = labels[counts < 2]
    if len(rare):
        # Classes with a single image cannot be stratified: pool them into one stratum.
        _warn(f"{step}: class(es) {list(rare)} have a single image here, too few to stratify; "
              "they are split at random as one pooled group")
        strata = np.where(np.isin(y, rare), "\0rare", y)
        _, pooled = np.unique(strata, return_counts=True)
        if pooled.min() < 2:
            strata = np.where(np.isin(strata, ["\0rare"]), labels[np.argmax(counts)], strata)
    n_strata = len(np.unique(strata))
    if n_strata > min(size, len(idx) - size):
        _warn(f"{step}: {size} of {len(idx)} images cannot hold one of each of the {n_strata} "
              "classes; this step is split at random without stratification")
        strata = None
    rest, taken = train_test_split(idx, test_size=size, random_state=seed, shuffle=True,
                                   stratify=strata)
    return np.sort(rest), np.sort(taken)


def _image_level(df: pd.DataFrame, protocol: Protocol, y: np.ndarray, seed: int) -> pd.DataFrame:
    sizes = split_sizes(len(df), protocol.ratios)
    idx = np.arange(len(df))
    trainval, test = _take(idx, y, sizes["test"], seed, "test split")
    train, val = _take(trainval, y[trainval], sizes["val"], seed, "validation split")
    split = np.empty(len(df), dtype=object)
    split[train], split[val], split[test] = "train", "val", "test"
    out = df.assign(split=split)
    if protocol.folds:
        out["fold"] = -1
        out.loc[out.index[trainval], "fold"] = _image_folds(y[trainval], protocol.folds, seed)
    return out


def _image_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.model_selection import KFold, StratifiedKFold

    if len(y) < k:
        raise DataError(f"{k}-fold cross-validation needs at least {k} train+val images, got "
                         f"{len(y)}")
    labels, counts = np.unique(y, return_counts=True)
    if counts.max() < k:
        _warn(f"cross-validation: every class has fewer than {k} images "
              f"({dict(zip(labels.tolist(), counts.tolist()))}); folds are drawn at random "
              "without stratification")
        splitter = KFold(k, shuffle=True, random_state=seed)
    else:
        if counts.min() < k:
            _warn(f"cross-validation: class(es) {labels[counts < k].tolist()} have fewer than {k} "
                  "images; some folds have no validation image of them")
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    return _folds_of(splitter.split(np.zeros(len(y)), y), len(y))


def _folds_of(splits, n: int) -> np.ndarray:
    fold = np.full(n, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small classes: we warn in our own words
        for f, (_, val) in enumerate(splits):
            fold[val] = f
    return fold


def _group_folds(label_of_row: np.ndarray, group_of_row: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold per row, whole groups per fold, stratified by ``StratifiedGroupKFold`` when it can be.

    It needs some class with at least ``k`` images; with fewer, the groups are dealt into the
    folds in seeded random order.
    """
    if np.bincount(label_of_row).max() >= k:
        from sklearn.model_selection import StratifiedGroupKFold

        splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        return _folds_of(splitter.split(np.zeros(len(label_of_row)), label_of_row, group_of_row),
                         len(label_of_row))
    order = np.random.default_rng(seed).permutation(group_of_row.max() + 1)
    return (order % k)[group_of_row]


def _cost(split_class: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Distance of per-split, per-class image counts (..., splits, classes) from their targets:
    every cell's deviation plus every split's size deviation (sizes count twice)."""
    cells = np.abs(split_class - target).sum(axis=(-2, -1))
    sizes = np.abs(split_class.sum(axis=-1) - target.sum(axis=-1)).sum(axis=-1)
    return cells + sizes


def _improve(counts: np.ndarray, target: np.ndarray, assign: np.ndarray,
             floor: np.ndarray, seed: int) -> np.ndarray:
    """Move single groups between splits while :func:`_cost` drops (first a repair pass that
    lifts every split to its minimum number of groups). Groups are visited in seeded random
    order: there are many equally good splits, and the seed picks one."""
    assign = assign.copy()
    n_splits = len(target)
    split_class = np.stack([counts[assign == s].sum(axis=0) for s in range(n_splits)])

    def cost_after(g: int, to: int) -> float:
        trial = split_class.copy()
        trial[assign[g]] -= counts[g]
        trial[to] += counts[g]
        return float(_cost(trial, target))

    def move(g: int, to: int) -> None:
        split_class[assign[g]] -= counts[g]
        split_class[to] += counts[g]
        assign[g] = to

    while True:
        sizes = np.bincount(assign, minlength=n_splits)
        short, donors = np.flatnonzero(sizes < floor), np.flatnonzero(sizes > floor)
        if not len(short) or not len(donors):
            break
        _, g = min((cost_after(g, short[0]), g) for g in range(len(counts)) if assign[g] in donors)
        move(g, short[0])

    order = np.random.default_rng(seed).permutation(len(counts))
    improved = True
    while improved:
        improved = False
        for g in order:
            if (assign == assign[g]).sum() <= floor[assign[g]]:
                continue  # never take a split below its minimum number of patients
            now = float(_cost(split_class, target))
            best = min((cost_after(g, s), s) for s in range(n_splits) if s != assign[g] and floor[s])
            if best[0] < now - 1e-9:
                move(g, best[1])
                improved = True
    return assign


def _deal(counts: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold of each group: groups in seeded random order (largest class first), each to the fold
    holding the fewest images of its main class.

    Like ``StratifiedGroupKFold``, but the seed really reorders the groups: scikit-learn's
    shuffle only breaks ties, so patients of one class land in the same folds whatever the seed.
    """
    main = counts.argmax(axis=1)
    order = np.lexsort((np.random.default_rng(seed).random(len(counts)), main))
    fold_class = np.zeros((k, counts.shape[1]))
    fold = np.empty(len(counts), dtype=int)
    for g in order:
        # fewest images of this class, then fewest images, then lowest fold number
        f = int(np.lexsort((np.arange(k), fold_class.sum(axis=1), fold_class[:, main[g]]))[0])
        fold[g] = f
        fold_class[f] += counts[g]
    return fold


def _grouped(y: np.ndarray, groups: np.ndarray, ratios: dict[str, float], seed: int,
             step: str, min_groups: dict[str, int] | None = None) -> np.ndarray:
    """Split name per row, whole groups to one split, sizes and classes as close as possible.

    ``ratios`` holds only splits with a positive share; ``min_groups`` is the fewest patients a
    split may get (default 1), honoured when there are enough patients.
    """
    names = [s for s in SPLITS if s in ratios]
    r = np.array([ratios[s] for s in names])
    group_ids, group_of_row = np.unique(groups, return_inverse=True)
    labels, label_of_row = np.unique(y, return_inverse=True)
    if len(group_ids) < len(names):
        raise DataError(
            f"{step}: only {len(group_ids)} patient(s); a patient-grouped split into "
            f"{len(names)} parts needs at least {len(names)} — split at image level (no --group)"
        )
    floor = np.array([max(1, (min_groups or {}).get(s, 1)) for s in names])
    if floor.sum() > len(group_ids):
        floor = np.ones(len(names), dtype=int)
    counts = np.zeros((len(group_ids), len(labels)))
    np.add.at(counts, (group_of_row, label_of_row), 1)
    thin = [str(c) for c, p in zip(labels, (counts > 0).sum(axis=0)) if p < len(names)]
    if thin:
        _warn(f"{step}: class(es) {thin} come from fewer than {len(names)} patients, so they "
              "cannot be in every split; the split keeps patients whole and balances the rest")
    target = r[:, None] * counts.sum(axis=0)[None, :]

    # Deal the patients into k folds, then try every assignment of folds to splits.
    k = int(min(_GROUP_FOLDS, len(group_ids)))
    fold_of_group = _deal(counts, k, seed)
    fold_counts = np.stack([counts[fold_of_group == f].sum(axis=0) for f in range(k)])
    fold_groups = np.bincount(fold_of_group, minlength=k)
    options = np.array(list(itertools.product(range(len(names)), repeat=k)))
    one_hot = np.stack([options == s for s in range(len(names))], axis=1).astype(float)
    cost = _cost(one_hot @ fold_counts, target[None])  # one_hot: (options, splits, folds)
    short = np.maximum(floor[None, :] - one_hot @ fold_groups, 0).sum(axis=1)
    best = options[int(np.argmin(cost + 1e9 * short))]  # meet the minimums first when possible
    assign = _improve(counts, target, best[fold_of_group], floor, seed)
    return np.array(names, dtype=object)[assign][group_of_row]


def _grouped_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    group_ids, group_of_row = np.unique(groups, return_inverse=True)
    if len(group_ids) < 2:
        raise DataError(f"patient-grouped cross-validation needs at least 2 patients in "
                         f"train+val, got {len(group_ids)}; split at image level (no --group)")
    if len(group_ids) < k:
        _warn(f"cross-validation: only {len(group_ids)} patients in train+val, too few for {k} "
              f"patient-grouped folds; making {len(group_ids)} folds (one patient each) instead")
        k = len(group_ids)
    _, label_of_row = np.unique(y, return_inverse=True)
    return _group_folds(label_of_row, group_of_row, k, seed)


PATIENT_FROM = ("numeric", "slide")  # the same spelling as the BreakHis loader's patient_from


def patient_groups(df: pd.DataFrame, patient_from: str | None = None) -> np.ndarray:
    """The patient of each row for a grouped split.

    ``None``: the manifest's ``patient_id``. ``"slide"``: the ``slide`` column (BreakHis: the
    whole token, ``22549AB``). ``"numeric"``: the numeric part of ``slide`` (``22549``; slides
    ``22549AB`` and ``22549CD`` are one patient), or ``patient_id`` where there is no ``slide``.
    """
    if patient_from is None:
        return df["patient_id"].astype(str).to_numpy()
    if patient_from not in PATIENT_FROM:
        raise DataError(f"patient_from={patient_from!r}: use one of {list(PATIENT_FROM)}")
    if "slide" not in df.columns:
        if patient_from == "slide":
            raise DataError("patient_from='slide' needs a 'slide' column (BreakHis manifests have "
                            f"one); this manifest has {list(df.columns)}: use 'numeric' or leave "
                            "it out (patient_id)")
        return df["patient_id"].astype(str).to_numpy()
    slide = df["slide"].astype(str)
    if patient_from == "slide":
        return slide.to_numpy()
    return slide.str.extract(r"^(\d+)", expand=False).fillna(slide).to_numpy()


def group_label(group: str | None, patient_from: str | None) -> str:
    """How a split was grouped, as recorded in its ``split_group`` column."""
    if group is None:
        return "image"
    return f"patient:{patient_from}" if patient_from else "patient"


def make_split(
    df: pd.DataFrame,
    protocol: str,
    group: str | None = None,
    seed: int = 0,
    stratify: str | Sequence[str] = "label",
    patient_from: str | None = None,
) -> pd.DataFrame:
    """A copy of ``df`` with ``split`` (train/val/test) and, for ``ernet``, ``fold``.

    Args:
        df: a manifest (any existing ``split``/``fold`` columns are replaced).
        protocol: ``dala``, ``ernet`` or ``modres`` (see ``PROTOCOLS``).
        group: ``None`` (image level, as the papers) or ``"patient"`` (no patient in two splits).
        seed: the only source of randomness.
        stratify: column(s) whose values each split should keep in proportion (default
            ``label``; e.g. ``["label", "magnification"]`` for pooled BreakHis magnifications).
        patient_from: with ``group="patient"``, what a patient is (:func:`patient_groups`):
            ``None`` (``patient_id``), ``"slide"`` or ``"numeric"``.
    """
    spec = get_protocol(protocol)
    check_columns(df, "manifest to split")
    if group not in (None, "patient"):
        raise DataError(f"group={group!r}: use None (image level) or 'patient'")
    if len(df) < 3:
        raise DataError(f"cannot split {len(df)} image(s) into train/val/test")
    if patient_from is not None and group is None:
        raise DataError("patient_from applies to a grouped split: add group='patient' "
                        "(CLI: --group patient)")
    old = ("split", "fold", *SPLIT_INFO_COLUMNS)
    base = df.drop(columns=[c for c in old if c in df.columns]).reset_index(drop=True)
    y = _strata(base, stratify)
    if group is None:
        out = _image_level(base, spec, y, seed)
    else:
        groups = patient_groups(base, patient_from)
        blank = int((groups == "").sum())
        if blank:
            raise DataError(
                f"{blank} of {len(groups)} row(s) have no patient_id, so they cannot be grouped "
                "by patient (BACH publishes no patient ids); split at image level (no --group)"
            )
        ratios = {s: spec.ratios[s] for s in SPLITS if spec.ratios[s] > 0}
        # Reserve one train+val patient per fold only when patients are plentiful; otherwise the
        # 70/30 ratio wins and cross-validation falls back to fewer folds (with a warning).
        plenty = len(np.unique(groups)) >= 2 * spec.folds
        split = _grouped(y, groups, ratios, seed, f"{protocol} patient split",
                         min_groups={"train": spec.folds} if spec.folds and plenty else None)
        out = base.assign(split=split)
        if spec.folds:
            trainval = np.flatnonzero(split != "test")
            out["fold"] = -1
            out.loc[trainval, "fold"] = _grouped_folds(y[trainval], groups[trainval], spec.folds, seed)
    if "fold" in out.columns:
        out["fold"] = out["fold"].astype(int)
    out.attrs.update(df.attrs)
    out.attrs["split"] = {"protocol": protocol, "group": group, "seed": seed,
                          "stratify": stratify, "patient_from": patient_from}
    return out


def fold_view(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """A copy of a split with a ``fold`` column where fold ``k`` is ``val`` and the other
    non-test rows ``train``; test rows are unchanged."""
    if "fold" not in df.columns or "split" not in df.columns:
        raise DataError("fold_view needs a split with a 'fold' column (make one with "
                         "protocol='ernet')")
    folds = sorted(int(f) for f in set(df["fold"]) if int(f) >= 0)
    if k not in folds:
        raise DataError(f"fold {k} not in this split; it has folds {folds}")
    out = df.copy()
    trainval = out["split"] != "test"
    out.loc[trainval, "split"] = np.where(out.loc[trainval, "fold"] == k, "val", "train")
    return out


def write_split(df: pd.DataFrame, path: str | os.PathLike, force: bool = False) -> str:
    """Write a split CSV and return its sha256.

    A split is never silently regenerated: when ``path`` exists with other content this raises
    ``FileExistsError`` unless ``force=True``; identical content is left untouched.
    """
    if "split" not in df.columns:
        raise DataError("write_split needs a 'split' column; make one with make_split()")
    data = manifest_csv_bytes(with_split_info(df))
    digest = hashlib.sha256(data).hexdigest()
    path = Path(path)
    if path.exists():
        old = path.read_bytes()
        if old == data:
            return digest
        if not force:
            raise OutputExistsError(
                f"{path} already holds a different split (sha256 "
                f"{hashlib.sha256(old).hexdigest()[:16]}..., new {digest[:16]}...); splits are "
                "never silently regenerated: write to another file, or pass force=True "
                "(CLI: --force) to replace it"
            )
    write_bytes_atomic(data, path)
    return digest


def with_split_info(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the ``split_*`` columns filled from ``df.attrs["split"]`` (when the split
    was made in this process), so the file itself says how it was made."""
    info = df.attrs.get("split")
    if not info:
        return df
    out = df.copy()
    out["split_protocol"] = info["protocol"]
    out["split_group"] = group_label(info.get("group"), info.get("patient_from"))
    out["split_seed"] = int(info.get("seed", 0))
    if info.get("fold") is not None:
        out["split_fold"] = int(info["fold"])
    return out


def split_info(df: pd.DataFrame) -> dict[str, object]:
    """How a split read back from a file was made (its ``split_*`` columns; {} if it has none)."""
    present = [c for c in SPLIT_INFO_COLUMNS if c in df.columns]
    if not present or df.empty:
        return {}
    info = {}
    for column in present:
        values = df[column].drop_duplicates().tolist()
        if len(values) != 1:
            raise DataError(f"column {column} of a split file must hold one value, found {values}")
        info[column.removeprefix("split_")] = values[0]
    return info


def describe_split(df: pd.DataFrame) -> pd.DataFrame:
    """Per split (and per fold, where there are folds): images, patients and images per class."""
    table = pd.crosstab(df["split"], df["label"])
    order = df.drop_duplicates("label").sort_values("label_index", kind="stable")["label"]
    table = table[order.tolist()]  # classes in label_index order, not alphabetical
    table.insert(0, "images", table.sum(axis=1))
    if "patient_id" in df.columns and (df["patient_id"].astype(str) != "").any():
        table.insert(1, "patients", df.groupby("split")["patient_id"].nunique())
    table = table.reindex([s for s in SPLITS if s in table.index])
    table.index.name = "split"
    return table


def patient_overlap(df: pd.DataFrame) -> list[str]:
    """Patients found in more than one split (empty ids ignored)."""
    ids = df[df["patient_id"].astype(str) != ""]
    per = ids.groupby("patient_id")["split"].nunique()
    return sorted(per.index[per > 1].astype(str))
