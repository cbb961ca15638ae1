"""Paper C's CDD-CESM task (normal vs malignant, benign left out) and paper A's Mini-DDSM subset
(2,000 images), on the committed reference manifests and splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from breastcam.data import make_split, read_manifest
from breastcam.data.loaders.miniddsm import PAPER_SUBSET, draw_paper_subset, paper_subset_cases
from breastcam.data.reference import reference_view

REPO = Path(__file__).resolve().parents[2]


def _committed_split(dataset: str) -> pd.DataFrame:
    return pd.read_csv(REPO / "data_manifests" / "splits" / f"{dataset}.csv.gz", dtype=str, keep_default_na=False)


def test_cddcesm_malignant_view_leaves_benign_out():
    ref = read_manifest(REPO / "data_manifests" / "cddcesm.csv")
    view = reference_view(ref, "cddcesm", classes="malignant", modality="low_energy")
    assert view.attrs["classes"] == ["normal", "malignant"]
    assert view["label"].value_counts().to_dict() == {"normal": 339, "malignant": 331}
    # 1986 = 6 x 331: the paper's tumour class after its 6x augmentation
    assert 6 * (view["label"] == "malignant").sum() == 1986


def test_committed_modres_split_is_normal_vs_malignant():
    split = _committed_split("cddcesm")
    column = "classes=malignant,modality=low_energy|all|modres|label"
    used = split[split[column] != ""]
    ref = read_manifest(REPO / "data_manifests" / "cddcesm.csv").set_index("path")
    assert len(used) == 670
    assert ref.loc[used["path"], "label"].value_counts().to_dict() == {"normal": 339, "malignant": 331}


def test_miniddsm_paper_subset_is_the_committed_seeded_draw():
    ref = read_manifest(REPO / "data_manifests" / "miniddsm.csv")
    drawn = draw_paper_subset(ref, seed=0)
    assert set(drawn["patient_id"]) == paper_subset_cases()  # the committed file is this draw
    view = reference_view(ref, "miniddsm", subset="paper")
    assert view["label"].value_counts().to_dict() == {k: v for k, v in sorted(PAPER_SUBSET.items(), key=lambda kv: -kv[1])}
    assert len(view) == 2000 and view.groupby("patient_id").size().eq(4).all()  # whole cases
    split = make_split(view, "dala", seed=0)
    assert split["split"].value_counts().to_dict() == {"train": 1200, "test": 600, "val": 200}
    assert draw_paper_subset(ref, seed=1)["patient_id"].tolist() != drawn["patient_id"].tolist()
