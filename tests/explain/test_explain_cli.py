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
        "--param", "n_samples=2", "--faithfulness", "--steps", "4", "--batch-size", "4", "--quiet",
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


def test_explain_measures_faithfulness_only_when_asked(tmp_path, breakhis_root, monkeypatch):
    """Default: overlays, maps and mask-free metrics, no deletion / insertion (2 x steps forward
    passes per image); ``--faithfulness`` adds them. Several batches through the pipelined loop
    give the engine's maps, rows in file order."""
    import keras

    from breastcam.data.decode import read_image
    from breastcam.data.pipeline import resize_image
    from breastcam.explain import get_cam
    from breastcam.explain import run as explain_run
    from conftest import small_cnn

    model = small_cnn(size=32, classes=2)
    model.save(tmp_path / "cnn.keras")
    labels = pd.read_csv(breakhis_root / "labels.csv")
    files = [str(breakhis_root / p) for p in labels["relpath"][:5]]
    args = ["explain", "--model", str(tmp_path / "cnn.keras"), "--images", *files, "--method", "gradcam",
            "--preprocessing", "minus_one_one", "--batch-size", "2", "--steps", "3", "--quiet"]

    def refuse(*_, **__):
        raise AssertionError("deletion/insertion ran without --faithfulness")

    with monkeypatch.context() as m:
        m.setattr(explain_run, "deletion_insertion", refuse)
        assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    plain = pd.read_csv(tmp_path / "plain" / "metrics.csv")
    assert not {"deletion_auc", "insertion_auc"} & set(plain.columns)
    assert list(plain["path"]) == files  # 3 batches, rows in file order
    x = np.stack([resize_image(read_image(f), (32, 32)).numpy() for f in files]).astype(np.float32)
    expected = get_cam("gradcam", keras.models.load_model(tmp_path / "cnn.keras"))(x / 127.5 - 1.0)
    for f, want in zip(plain["stem"], expected):
        np.testing.assert_allclose(np.load(tmp_path / "plain" / f"{f}_gradcam.npy"), want, atol=1e-4)
        assert (tmp_path / "plain" / f"{f}_overlay.png").stat().st_size > 0

    assert main([*args, "--faithfulness", "--out", str(tmp_path / "faith")]) == 0
    faith = pd.read_csv(tmp_path / "faith" / "metrics.csv")
    assert faith[["deletion_auc", "insertion_auc"]].notna().all().all()
    assert faith[["deletion_auc", "insertion_auc"]].stack().between(0, 1).all()
    # ROAD beside them: MoRF / LeRF means are probabilities, their gap the difference
    assert faith[["road_morf", "road_lerf"]].stack().between(0, 1).all()
    np.testing.assert_allclose(faith["road_gap"], faith["road_lerf"] - faith["road_morf"], atol=1e-6)
    pd.testing.assert_frame_equal(faith[plain.columns], plain, atol=1e-5)


def test_explain_files_reuses_a_ready_cam_object_of_the_same_model(tmp_path, breakhis_files):
    from conftest import small_cnn

    from breastcam.errors import UsageError
    from breastcam.explain import get_cam
    from breastcam.explain.run import explain_files

    model, other = small_cnn(size=32, classes=2), small_cnn(size=32, classes=2, name="other")
    cam = get_cam("gradcam", model)
    frame = explain_files(model, breakhis_files, cam, out_dir=tmp_path, preprocessing="minus_one_one",
                          progress=False)
    assert list(frame["method"]) == ["gradcam"] * 2 and (tmp_path / "metrics.csv").is_file()
    with pytest.raises(UsageError, match="other"):
        explain_files(other, breakhis_files, cam, out_dir=tmp_path, preprocessing="minus_one_one")
    with pytest.raises(UsageError, match="top_k"):
        explain_files(model, breakhis_files, cam, out_dir=tmp_path, preprocessing="minus_one_one", top_k=3)


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


def test_a_users_own_sequential_model_is_explained_with_its_preprocessing_only(tmp_path, breakhis_root, capsys,
                                                                              user_keras_file):
    """A small Sequential CNN saved with model.save (no breastcam layer): every method works with
    --preprocessing and no --layer (before: 'None values not supported', the probe's CAM layer
    and class score came from two different calls of the loaded Sequential's layers)."""
    from breastcam.cli import main

    user = user_keras_file
    images = sorted(breakhis_root.rglob("*.png"))[:3]
    for method in ("gradcam", "gradcampp", "scorecam", "eigencam", "dtgradcam"):
        out = tmp_path / method
        assert main(["explain", "--model", str(user), "--images", *map(str, images),
                     "--preprocessing", "minus_one_one", "--method", method, "--out", str(out), "--quiet"]) == 0
        assert len(list(out.glob("*_overlay.png"))) == 3
        maps = [np.load(p) for p in out.glob(f"*_{method}.npy")]
        assert all(m.shape == (64, 64) and np.isfinite(m).all() for m in maps)
    # without --preprocessing: one clear message, not a guess
    assert main(["explain", "--model", str(user), "--images", str(images[0]),
                 "--out", str(tmp_path / "x"), "--quiet"]) == 1
    assert "--preprocessing" in capsys.readouterr().err


def test_a_users_model_around_a_keras_applications_backbone_is_explained_from_the_cli(tmp_path, breakhis_root):
    """The common way to build a model: a keras.applications base nested in a Sequential, saved with
    model.save; --layer auto finds the base's last map by its outer/inner name."""
    import keras

    from breastcam.cli import main

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=None)
    net = keras.Sequential([keras.Input((64, 64, 3)), base, keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(2, activation="softmax")])
    net.save(tmp_path / "user.keras")
    images = sorted(breakhis_root.rglob("*.png"))[:2]
    out = tmp_path / "cams"
    assert main(["explain", "--model", str(tmp_path / "user.keras"), "--images", *map(str, images),
                 "--preprocessing", "minus_one_one", "--method", "gradcam", "--out", str(out), "--quiet"]) == 0
    assert len(list(out.glob("*_overlay.png"))) == 2
    maps = [np.load(p) for p in out.glob("*_gradcam.npy")]
    assert all(m.shape == (64, 64) and np.isfinite(m).all() for m in maps)
