"""The BreakHis authors' own five train/test splits (``dsfold1..5.txt``) as a split protocol.

Spanhol et al. split the 82 slide folders ("patients") 70/30 five times at random (their
``mkfold.py``): the five test sets overlap, so these are five repeated hold-outs, not a
partition. ``official_split(df, fold)`` puts the authors' test images of fold ``fold`` (1-5) in
``test`` and carves a validation set out of their training images, whole patients at a time
(``val_fraction`` of the training images, seeded), because training monitors a validation set.

The authors' patient is the slide folder, so a patient number can sit on both sides: ten numbers
span several slide folders, nine through several slide tokens (``22549AB``, ``22549CD``) and
``14-13412`` because it is filed under two tumour types. :func:`leak_table` counts, per fold, the test images whose patient is also in the
training images, under each reading of "patient".
"""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from breastcam.data.manifest import check_columns
from breastcam.data.reference import OFFICIAL_COLUMNS
from breastcam.data.splits import _grouped, _strata, patient_groups
from breastcam.errors import DataError

PROTOCOL = "breakhis-official"
FOLDS = tuple(range(1, 6))


def attach_official_folds(df: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """``df`` (any BreakHis manifest) with the reference's ``official_fold1..5`` columns, matched
    by file name; a file the authors' fold files do not list is an error naming it."""
    if all(c in df.columns for c in OFFICIAL_COLUMNS):
        return df
    missing = [c for c in OFFICIAL_COLUMNS if c not in reference.columns]
    if missing:
        raise DataError(f"the reference manifest lacks {missing}: use data_manifests/breakhis.csv")
    names = reference["path"].map(lambda p: PurePosixPath(p).name)
    table = reference[list(OFFICIAL_COLUMNS)].set_index(names)
    mine = df["path"].map(lambda p: PurePosixPath(str(p)).name)
    unknown = sorted(set(mine) - set(table.index))
    if unknown:
        raise DataError(f"{len(unknown)} image(s) are not in the BreakHis fold files: "
                        f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    out = df.drop(columns=[c for c in OFFICIAL_COLUMNS if c in df.columns]).copy()
    for column in OFFICIAL_COLUMNS:
        out[column] = table.loc[mine, column].to_numpy()
    out.attrs.update(df.attrs)
    return out


def official_split(df: pd.DataFrame, fold: int, *, val_fraction: float = 0.1, seed: int = 0,
                   patient_from: str | None = "slide") -> pd.DataFrame:
    """A copy of ``df`` with ``split``: the authors' test images of ``fold`` are ``test``; of
    their training images ``val_fraction`` (whole patients, per ``patient_from``; balanced per
    class) are ``val`` and the rest ``train``. ``df`` needs the ``official_fold<K>`` columns
    (:func:`attach_official_folds`)."""
    if fold not in FOLDS:
        raise DataError(f"BreakHis official fold {fold!r}: choose one of {list(FOLDS)}")
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction={val_fraction}: give a fraction between 0 and 1")
    check_columns(df, "manifest to split")
    column = OFFICIAL_COLUMNS[fold - 1]
    if column not in df.columns:
        raise DataError(f"the manifest has no {column} column: attach the authors' folds from "
                        "data_manifests/breakhis.csv (attach_official_folds; the CLI does it)")
    base = df.drop(columns=[c for c in ("split", "fold") if c in df.columns]).reset_index(drop=True)
    test = (base[column] == "test").to_numpy()
    split = np.where(test, "test", "train").astype(object)
    train = np.flatnonzero(~test)
    if len(train):
        groups = patient_groups(base, patient_from)[train]
        y = _strata(base.iloc[train], "label")
        split[train] = _grouped(y, groups, {"train": 1 - val_fraction, "val": val_fraction},
                                seed, f"{PROTOCOL} fold {fold} validation")
    out = base.assign(split=split)
    out.attrs.update(df.attrs)
    out.attrs["split"] = {"protocol": PROTOCOL, "group": "patient", "seed": seed, "fold": fold,
                          "patient_from": patient_from, "stratify": "label"}
    return out


def leak_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per official fold: training and test images, and the test images whose patient is also
    among the training images, for three readings of "patient": the authors' slide folder, the
    slide token (``22549AB``) and its number (``22549``, breastcam's default)."""
    readings = {"slide folder": df["slide_folder"].astype(str).to_numpy(),
                "slide": patient_groups(df, "slide"), "number": patient_groups(df, "numeric")}
    rows = []
    for fold, column in zip(FOLDS, OFFICIAL_COLUMNS):
        test = (df[column] == "test").to_numpy()
        row = {"fold": fold, "train images": int((~test).sum()), "test images": int(test.sum())}
        for name, ids in readings.items():
            seen = set(ids[~test])
            row[f"test images, {name} in train"] = int(np.isin(ids[test], list(seen)).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def leak_markdown(df: pd.DataFrame) -> str:
    """``docs/BREAKHIS_FOLDS.md``: the leak table of the reference manifest, with its reading."""
    table = leak_table(df)
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---:" for _ in table.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    number = table["test images, number in train"]
    share = number / table["test images"]
    return "\n".join([
        "# BreakHis official folds: patients on both sides",
        "",
        "Generated by `python data_manifests/build.py` from `data_manifests/breakhis.csv` (the",
        "authors' `dsfold1..5.txt`) with `breastcam.data.official.leak_table`; a test checks that",
        "this file is current. Do not edit by hand.",
        "",
        "The authors split the 82 slide folders 70/30 five times (`breastcam split --protocol",
        "breakhis-official --fold K`). Per fold: the test images whose patient also has images in",
        "the training images, for three readings of \"patient\":",
        "",
        header, rule, *body,
        "",
        "- **slide folder** (the authors' patient, e.g. `SOB_M_DC_14-13412`): no leak by",
        "  construction.",
        "- **slide** (the token, `13412`, `22549AB`): slide 14-13412 is filed under both ductal",
        "  and lobular carcinoma; its 123 images per folder sit on both sides in the folds above.",
        "- **number** (`22549` for `22549AB` and `22549CD`; breastcam's default `patient_id`): ten",
        "  numbers span several slide folders (nine through several slide tokens such as",
        "  `22549AB`/`22549CD`, and `13412` through one token under two tumour types), so "
        f"{int(number.min()):,}-{int(number.max()):,} test images per fold "
        f"({share.min():.0%}-{share.max():.0%} of the test set) have a patient number that is also",
        "  in training. Results on the official folds are therefore not patient-disjoint in",
        "  breastcam's conservative sense; the `patient` protocols of `breastcam split --group",
        "  patient` are.",
        "",
    ])
