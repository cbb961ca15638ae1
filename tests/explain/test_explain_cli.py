"""``breastcam explain`` on real images (BreakHis PNGs, mini-MIAS PGMs with lesion masks) and the
Fig. 7 grid."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from breastcam.cli import main

MIAS = ("mdb028", "mdb010", "mdb009")  # malignant (circle), benign (circle), normal (no lesion)


@pytest.fixture(scope="module")
def breakhis_files(breakhis_root):
    labels = pd.read_csv(breakhis_root / "labels.csv")
    return [breakhis_root / labels.loc[i, "relpath"] for i in (0, 10)]


def test_explain_cli_writes_overlays_maps_and_metrics(tmp_path, breakhis_files, mias_root):
    files = [str(p) for p in breakhis_files] + [str(mias_root / f"{m}.pgm") for m in MIAS]
    out = tmp_path / "explained"
    code = main([
        "explain", "--model", "dalaresnet50", "--num-classes", "2", "--input-size", "96",
        "--images", *files, "--method", "dtgradcam", "--masks", str(mias_root), "--out", str(out),
        "--param", "n_samples=2", "--steps", "4", "--batch-size", "4", "--quiet",
    ])
    assert code == 0
    overlays = sorted(p.name for p in out.glob("*_overlay.png"))
    stems = sorted([p.rsplit("/", 1)[-1].rsplit(".", 1)[0] for p in files])
    assert overlays == [f"{s}_overlay.png" for s in stems]
    for s in stems:
        m = np.load(out / f"{s}_dtgradcam.npy")
        assert m.shape == (96, 96) and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
    import cv2

    png = cv2.imread(str(out / f"{MIAS[0]}_overlay.png"))
    assert png.shape == (1024, 1024, 3)  # the overlay is at the original image's size
    frame = pd.read_csv(out / "metrics.csv").set_index("stem")
    assert len(frame) == len(files)
    for col in ("target", "target_probability", "deletion_auc", "insertion_auc", "otsu_threshold",
                "has_mask", "iou", "dice", "precision", "recall", "f1"):
        assert col in frame.columns
    assert frame[["deletion_auc", "insertion_auc"]].notna().all().all()
    assert frame.loc[list(MIAS[:2]), "has_mask"].all()
    assert not frame.loc[MIAS[2], "has_mask"] and math.isnan(frame.loc[MIAS[2], "iou"])
    assert frame.loc[list(MIAS[:2]), ["iou", "dice", "recall"]].notna().all().all()
    assert not frame.loc[breakhis_files[0].stem, "has_mask"]  # no BreakHis mask in a MIAS folder


def test_explain_cli_reports_bad_input(tmp_path, capsys):
    code = main(["explain", "--model", "no_such_model", "--images", str(tmp_path), "--out", str(tmp_path)])
    assert code == 1
    assert "no_such_model" in capsys.readouterr().err


def test_cam_grid_figure(tmp_path):
    from breastcam.report.cam_grid import cam_grid

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 20, 30, 3), dtype=np.uint8)
    maps = {m: rng.uniform(size=(2, 5, 5)).astype(np.float32)
            for m in ("gradcam", "scorecam", "eigencam", "dtgradcam")}
    fig = cam_grid(images, maps, row_labels=["40X", "400X"], out_path=tmp_path / "fig7.png")
    titles = [ax.get_title() for ax in fig.axes[:5]]
    assert titles == ["Original", "Grad-CAM", "Score-CAM", "Eigen-CAM", "DT Grad-CAM"]
    assert len(fig.axes) == 10 and fig.axes[0].get_ylabel() == "40X"
    assert (tmp_path / "fig7.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="maps for"):
        cam_grid(images, {"gradcam": maps["gradcam"][:1]})
