"""A small synthetic split shared by the training tests (imported like _distributed.py)."""

from __future__ import annotations

from pathlib import Path

from breastcam.data import make_split, make_synthetic, write_split


def synthetic_split(root: Path, *, n_patients: int, size: int) -> tuple[Path, Path]:
    """A patient-level paper-A split of a small synthetic set under ``root``: (split.csv, image root)."""
    df = make_synthetic(root / "data", n_patients=n_patients, images_per_patient=3, image_size=(size, size), seed=0)
    path = root / "split.csv"
    write_split(make_split(df, "dala", group="patient", seed=0), path)
    return path, root / "data"
