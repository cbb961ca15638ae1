"""Run folders made without training (a built model saved as the run's checkpoint), for tests of
what reads runs. ``make_run`` writes what ``breastcam train`` writes that readers use."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pandas as pd
import yaml

from breastcam import models
from breastcam.data.decode import read_image
from breastcam.runs import files
from breastcam.stain import Macenko

CLASSES = ["benign", "malignant"]


def sample_rows(breakhis_root: Path, per_class: int = 2) -> pd.DataFrame:
    """``per_class`` benign and malignant BreakHis PNGs as the test rows of a manifest."""
    paths = sorted(breakhis_root.rglob("*.png"))
    picked = ([p for p in paths if "/benign/" in p.as_posix()][:per_class]
              + [p for p in paths if "/malignant/" in p.as_posix()][:per_class])
    return pd.DataFrame({
        "path": [p.relative_to(breakhis_root).as_posix() for p in picked],
        "label": [CLASSES[i // per_class] for i in range(len(picked))],
        "label_index": [i // per_class for i in range(len(picked))],
        "patient_id": [f"p{i}" for i in range(len(picked))],
        "split": "test",
        "split_protocol": "dala", "split_group": "image", "split_seed": 0,
    })


def make_run(run_dir: Path, name: str, breakhis_root: Path, rows: pd.DataFrame, *, stain: bool = False,
             seed: int = 0) -> Path:
    """A finished-looking run of the registry's small ``name`` (random weights, seeded)."""
    spec = models.spec(name)
    shape, options = spec.small_config()
    keras.utils.set_random_seed(seed)
    model = models.build(name, len(CLASSES), shape, weights=None, **options)
    run_dir.mkdir(parents=True)
    model.save(run_dir / files.BEST)
    manifest = run_dir.parent / f"{run_dir.name}_manifest.csv"
    rows.to_csv(manifest, index=False)
    rows.to_csv(run_dir / files.SPLIT, index=False)
    data = {"root": str(breakhis_root), "manifest": str(manifest), "image_size": list(shape[:2]),
            "preprocessing": spec.preprocessing, "class_names": CLASSES}
    if stain:
        reference = run_dir.parent / f"{run_dir.name}_reference.json"
        Macenko().fit(read_image(breakhis_root / rows["path"].iloc[-1])).save(reference)
        data["stain"] = {"method": "macenko", "reference": str(reference)}
    (run_dir / files.INFO).write_text(json.dumps({"class_names": CLASSES, "preprocessing": spec.preprocessing}))
    config = {"name": f"test-{name}", "seed": seed, "output_dir": str(run_dir), "data": data,
              "model": {"name": name, "options": options, "weights": None},
              "train": {"batch_size": 4, "epochs": 1}}
    (run_dir / files.CONFIG).write_text(yaml.safe_dump(config))
    (run_dir / files.STATUS).write_text(json.dumps({"state": "finished", "epochs": 1}))
    return run_dir
