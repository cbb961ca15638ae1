"""The experiments' splits, committed: ``data_manifests/splits/<dataset>.csv.gz``.

Every split an experiment makes on a complete download (image level as the paper, and grouped
by patient as breastcam adds; seed 0) is computed once from the reference manifest
(``data_manifests/<dataset>.csv``) and committed, so two users with the same download train on
the same images even if a library's random generator changes. One file per dataset: ``path``
(as in the reference manifest) and one column per distinct split, named
``<filters>|<subset>|<protocol>[-patient]|<stratify>``; a cell is the row's split (``train``/``val``/
``test``), ``train:K`` for a cross-validation row whose validation fold is ``K``, or empty when
the row is not in that split's subset. Experiments with the same data, subset, protocol and
stratification share a column.

``reproduce`` uses a committed split when the images of a split job are exactly the committed
ones (:func:`committed_split`), and refuses a download that is not the complete release unless
``allow_partial`` (:func:`check_download`). ``python data_manifests/build.py`` rewrites the files.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import warnings
from pathlib import Path, PurePosixPath
from typing import Mapping

import numpy as np
import pandas as pd

from breastcam.data import make_split, read_manifest
from breastcam.data.against import locate_root
from breastcam.data.reference import BUILDERS, reference_view
from breastcam.errors import DataError
from breastcam.resources import data_manifests_dir



def manifests_dir() -> Path:
    """``data_manifests/`` of the checkout or of the installed wheel (breastcam.resources)."""
    return data_manifests_dir()


def splits_dir() -> Path:
    return data_manifests_dir() / "splits"


def column_name(experiment: Mapping, job) -> str:
    filters = ",".join(f"{k}={v}" for k, v in sorted((experiment.get("filters") or {}).items()))
    protocol = f"{job.base}-patient" if job.group else job.base
    return f"{filters}|{job.subset}|{protocol}|{'+'.join(job.stratify)}"


def _cells(split: pd.DataFrame) -> pd.Series:
    cells = split["split"].astype(str)
    if "fold" in split.columns:
        trainval = cells != "test"
        cells = cells.where(~trainval, cells + ":" + split["fold"].astype(str))
    return pd.Series(cells.to_numpy(), index=split["path"].to_numpy())


def build_splits(dataset: str, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every experiment's splits of ``dataset`` on its complete release (see module doc)."""
    from breastcam.report import list_experiments, load_experiment
    from breastcam.reproduce.plan import make_plan

    ref = reference if reference is not None else read_manifest(manifests_dir() / f"{dataset}.csv")
    out = pd.DataFrame({"path": ref["path"].astype(str)})
    columns: dict[str, pd.Series] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, _, _ in list_experiments():
            exp = load_experiment(name)
            if exp["dataset"] != dataset:
                continue
            view = reference_view(ref, dataset, **dict(exp.get("filters") or {}))
            plan = make_plan(exp, manifests_dir(), out_dir=Path(tmp) / name, quick=False, manifest=view)
            for job in plan.splits:
                column = column_name(exp, job)
                if column in columns or job.fold:  # the authors' folds: in breakhis.csv itself
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    split = make_split(job.rows, job.base, group=job.group, seed=0,
                                       stratify=job.stratify)
                columns[column] = out["path"].map(_cells(split)).fillna("")
    return pd.concat([out, pd.DataFrame(columns)], axis=1)


def splits_bytes(df: pd.DataFrame) -> bytes:
    """Gzipped CSV with a zero timestamp: the same splits give the same bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as handle:
        handle.write(df.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return buffer.getvalue()


def read_splits(dataset: str) -> pd.DataFrame | None:
    path = splits_dir() / f"{dataset}.csv.gz"
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _prefix(paths: list[str], data_dir: Path) -> str:
    """What the reference paths have in front of the loader's (``BreaKHis_v1/`` when the data
    folder given is ``.../BreaKHis_v1``)."""
    base = locate_root(paths, data_dir)
    try:
        rel = data_dir.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel + "/"


def committed_split(experiment: Mapping, job, data_dir: str | Path) -> pd.DataFrame | None:
    """The committed split of ``job`` when its images are exactly the committed ones, else None."""
    table = read_splits(experiment["dataset"])
    column = column_name(experiment, job)
    if table is None or column not in table.columns or getattr(job, "fold", None):
        return None
    cells = table.loc[table[column] != "", ["path", column]]
    prefix = _prefix(table["path"].tolist(), Path(data_dir))
    paths = (prefix + job.rows["path"].astype(str)).tolist()
    lookup = dict(zip(cells["path"], cells[column]))
    if len(paths) != len(lookup) or any(p not in lookup for p in paths):
        return None
    values = [lookup[p].split(":") for p in paths]
    base = job.rows.drop(columns=[c for c in ("split", "fold") if c in job.rows.columns])
    out = base.reset_index(drop=True).assign(split=[v[0] for v in values])
    if any(len(v) > 1 for v in values):
        out["fold"] = np.array([int(v[1]) if len(v) > 1 else -1 for v in values], dtype=int)
    out.attrs.update(job.rows.attrs)
    out.attrs["split"] = {"protocol": job.base, "group": job.group, "seed": 0,
                          "stratify": job.stratify, "patient_from": None}
    return out


def check_download(experiment: Mapping, manifest: pd.DataFrame, data_dir: str | Path, *,
                   allow_partial: bool = False) -> str | None:
    """Compare the data folder's images with the complete release (the reference manifest seen
    through the experiment's filters). Returns a note when they differ and ``allow_partial``;
    raises :class:`DataError` when they differ otherwise; None when they match (or the dataset
    has no reference manifest)."""
    dataset = experiment["dataset"]
    path = manifests_dir() / f"{dataset}.csv"
    if dataset not in BUILDERS or not path.is_file():
        return None
    view = reference_view(read_manifest(path), dataset, **dict(experiment.get("filters") or {}))
    prefix = _prefix(view["path"].astype(str).tolist(), Path(data_dir))
    have = set(prefix + manifest["path"].astype(str))
    want = set(view["path"].astype(str))
    missing, extra = sorted(want - have), sorted(have - want)
    if not missing and not extra:
        return None
    example = f" (e.g. {PurePosixPath((missing or extra)[0])})"
    text = (f"{dataset} under {data_dir}: {len(missing)} of the release's {len(want)} images are "
            f"missing and {len(extra)} are not in it{example}, so the committed splits of "
            f"data_manifests/splits/{dataset}.csv.gz cannot be used")
    if allow_partial:
        return text + "; --allow-partial: the images present were split afresh (seed 0)"
    raise DataError(text + f". `breastcam validate --against data_manifests/{dataset}.csv --root "
                    f"{data_dir}` lists every difference; give the complete download, or pass "
                    "--allow-partial to split the images present (results are then not comparable "
                    "with a complete run)")


def require_complete(experiment: Mapping, data_dir: str | Path) -> None:
    """Raise :class:`DataError` unless ``data_dir`` holds the complete release (see
    :func:`check_download`); used before any experiment runs, special ones included."""
    if experiment["dataset"] not in BUILDERS:
        return
    from breastcam.data import load_manifest

    manifest = load_manifest(experiment["dataset"], data_dir, **dict(experiment.get("filters") or {}))
    check_download(experiment, manifest, data_dir)
