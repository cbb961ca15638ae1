"""``Run``: a typed view of a run directory (written by ``breastcam train``).

Every reader of a run goes through this class, so the file names, the fallbacks for older runs
and the preprocessing decision live here once.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from breastcam.errors import DataError, MissingFileError, RunStateError
from breastcam.runs import files


def resolve_preprocessing(model_name: str, data: Mapping | None = None) -> str:
    """The pixel preprocessing of a run: ``data.preprocessing`` if set, else the model's own."""
    name = (data or {}).get("preprocessing")
    if name:
        return str(name)
    from breastcam import models

    return models.spec(model_name).preprocessing


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Run:
    """A run directory: ``Run.open(path)``, then its config, files and trained model.

    ``config`` is the resolved ``config.yaml`` (a dict, as ``breastcam.train.load_config`` wrote
    it); the properties are the values the other commands need, with the fallbacks older runs
    require (class names from ``run_info.json`` or the rows, preprocessing from the registry).
    """

    def __init__(self, path: str | Path, config: dict):
        self.dir = Path(path)
        self.config = config

    # === Opening ===
    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = Path(path)
        cfg_path = path / files.CONFIG
        if not path.exists():
            raise MissingFileError(f"{path} does not exist: not a run directory (train one with `breastcam train`)")
        if not cfg_path.is_file():
            raise MissingFileError(
                f"{cfg_path} not found: {path} is not a run directory (a folder `breastcam train` "
                "wrote, holding config.yaml and best.keras)"
            )
        with open(cfg_path) as fh:
            try:
                cfg = yaml.safe_load(fh) or {}
            except yaml.YAMLError as err:
                raise DataError(f"{cfg_path} is not valid YAML: {err}") from None
        if not isinstance(cfg, dict):
            raise DataError(f"{cfg_path} must be a YAML mapping")
        return cls(path, cfg)

    @staticmethod
    def is_run(path: str | Path) -> bool:
        return (Path(path) / files.CONFIG).is_file()

    # === Files ===
    def path(self, name: str) -> Path:
        return self.dir / name

    def model_path(self, model_file: str = files.BEST) -> Path:
        path = self.dir / model_file
        if not path.is_file():
            raise MissingFileError(
                f"model file {path} not found: the run has not finished training (run the same "
                "`breastcam train` command again to resume it)"
            )
        return path

    @property
    def has_model(self) -> bool:
        return (self.dir / files.BEST).is_file()

    def read_json(self, name: str) -> dict:
        path = self.dir / name
        return json.loads(path.read_text()) if path.is_file() else {}

    @cached_property
    def info(self) -> dict:
        return self.read_json(files.INFO)

    @property
    def status(self) -> dict:
        return self.read_json(files.STATUS)

    @property
    def finished(self) -> bool:
        return self.status.get("state") == "finished"

    # === The resolved config, typed ===
    @property
    def data(self) -> dict:
        return self.config.get("data") or {}

    @property
    def train(self) -> dict:
        return self.config.get("train") or {}

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.dir.name)

    @property
    def model_name(self) -> str:
        name = (self.config.get("model") or {}).get("name")
        if not name:
            raise DataError(f"{self.dir / files.CONFIG} names no model (model.name)")
        return str(name)

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.data.get("image_size") or 224
        if isinstance(size, int):
            return (size, size)
        return tuple(int(v) for v in size)[:2]

    @property
    def preprocessing(self) -> str:
        return self.data.get("preprocessing") or self.info.get("preprocessing") or \
            resolve_preprocessing(self.model_name)

    @property
    def data_root(self) -> str:
        return str(self.data.get("root") or ".")

    @property
    def batch_size(self) -> int:
        return int(self.train.get("batch_size") or 32)

    @property
    def stain_config(self) -> dict | None:
        return self.data.get("stain") or None

    def class_names(self, rows: pd.DataFrame | None = None) -> list[str]:
        """From the config, ``run_info.json``, else the rows' ``label_index`` -> ``label``."""
        names = self.data.get("class_names") or self.info.get("class_names")
        if names:
            return [str(n) for n in names]
        if rows is None:
            rows = self.rows("test")
        pairs = rows[["label_index", "label"]].drop_duplicates().sort_values("label_index")
        return pairs["label"].astype(str).tolist()

    # === Data ===
    def rows(self, split: str = "test") -> pd.DataFrame:
        """The manifest rows of ``split``: from the run's ``split.csv``, else from its manifest.

        ``split.csv`` may hold only the rows trained on (train/val); the test rows then come
        from ``data.manifest`` (with the run's fold applied, if any).
        """
        from breastcam.data.manifest import read_manifest

        looked = []
        own = self.dir / files.SPLIT
        if own.is_file():
            df = read_manifest(own)
            if "split" in df and (df["split"] == split).any():
                return df[df["split"] == split].reset_index(drop=True)
            looked.append(str(own))
        manifest = self.data.get("manifest")
        if manifest and Path(manifest).is_file():
            df = read_manifest(manifest)
            if self.data.get("fold") is not None:
                from breastcam.data.splits import fold_view

                df = fold_view(df, int(self.data["fold"]))
            if "split" in df and (df["split"] == split).any():
                return df[df["split"] == split].reset_index(drop=True)
            looked.append(str(manifest))
        elif manifest:
            looked.append(f"{manifest} (not found; relative paths are read from the current folder)")
        raise DataError(
            f"no '{split}' rows for run {self.dir}: looked in {', '.join(looked) or 'nothing'}; "
            "check data.manifest in its config.yaml"
        )

    @property
    def split_sha256(self) -> str | None:
        """sha256 of the manifest file the run was split from (``data.manifest``), if present."""
        manifest = self.data.get("manifest")
        return _sha256(Path(manifest)) if manifest else None

    @property
    def rows_sha256(self) -> str | None:
        """sha256 of the run's own ``split.csv`` (the rows it trained and validated on)."""
        return _sha256(self.dir / files.SPLIT)

    # === The stain normaliser and the trained model ===
    def stain(self, *, jit_compile: bool = False):
        """The run's fitted normaliser (``stain.json``, written at training), else fitted again
        from ``data.stain`` (runs older than the file); ``None`` when the run used none."""
        from breastcam.stain import Macenko
        from breastcam.stain.config import stain_from_config

        if not self.stain_config:
            return None
        saved = self.dir / files.STAIN
        if saved.is_file():
            return Macenko.load(saved, jit_compile=jit_compile)
        return stain_from_config(self.stain_config, jit_compile=jit_compile)

    @property
    def calibration(self) -> dict | None:
        """``calibration.json`` (written by ``breastcam calibrate``), or None."""
        return self.read_json(files.CALIBRATION) or None

    def trained_model(self, model_file: str = files.BEST, *, calibrated: bool = True) -> "Any":
        """The run's :class:`~breastcam.runs.TrainedModel` (network + input pipeline + classes,
        and its calibration unless ``calibrated=False``: what calibration itself is fitted on)."""
        from breastcam.models import load_model
        from breastcam.runs.trained import TrainedModel

        network = load_model(self.model_path(model_file))
        network.run_eagerly = bool(self.train.get("run_eagerly"))  # as trained (quick runs)
        return TrainedModel(
            network=network, class_names=self.class_names(), image_size=self.image_size,
            preprocessing=self.preprocessing, stain=self.stain(), source=str(self.dir),
            provenance=self.provenance(), calibration=self.calibration if calibrated else None,
        )

    def provenance(self) -> dict:
        """What the model card and the export metadata record about the run."""
        return {
            "run_dir": str(self.dir), "run_name": self.name, "seed": self.config.get("seed"),
            "manifest": self.data.get("manifest"), "manifest_sha256": self.split_sha256,
            "rows_sha256": self.rows_sha256, "fold": self.data.get("fold"),
            "data_root": self.data.get("root"),
        }

    def require_finished(self) -> None:
        if not self.has_model:
            raise RunStateError(f"run {self.dir} has no {files.BEST}: train it first (breastcam train)")

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, model={self.config.get('model', {}).get('name')!r})"
