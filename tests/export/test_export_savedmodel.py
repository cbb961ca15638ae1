"""Export: a SavedModel reloaded in a fresh process gives the same probabilities and DT Grad-CAM
maps as the Keras model and the Python DT Grad-CAM; in-graph Otsu/morphology equal OpenCV's."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from breastcam import models
from breastcam.data.preprocess import get_preprocessor
from breastcam.explain import get_cam
from breastcam.explain.graph_ops import ellipse_kernel, open_close, otsu_thresholds
from breastcam.export import Predictor, export_model, predict_images

from _tolerance import assert_thresholded_maps_close

SIZE = 64


def _between_class_variance(u8: np.ndarray) -> np.ndarray:
    """Otsu's criterion q1 q2 (mu1 - mu2)^2 for every threshold t = 0..255, in float64; -1
    where a class is (almost) empty, which OpenCV skips."""
    p = np.bincount(u8.ravel(), minlength=256) / u8.size
    q1 = np.cumsum(p)
    m1 = np.cumsum(p * np.arange(256))
    q2 = 1.0 - q1
    valid = np.minimum(q1, q2) >= np.finfo(np.float32).eps
    q1, q2 = np.where(valid, q1, 1.0), np.where(valid, q2, 1.0)
    sigma = q1 * q2 * (m1 / q1 - (m1[-1] - m1) / q2) ** 2
    return np.where(valid, sigma, -1.0)


def test_graph_otsu_and_morphology_equal_opencv():
    rng = np.random.default_rng(1)
    for _ in range(10):
        m = cv2.GaussianBlur(rng.random((40, 52)), (0, 0), 3)
        u8 = np.clip(np.rint((m - m.min()) / (m.max() - m.min()) * 255), 0, 255).astype(np.uint8)
        t, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        got = int(otsu_thresholds(tf.constant(u8[None])).numpy()[0])
        # Two float64 implementations of one argmax: equal, unless two thresholds tie to
        # rounding (then both must reach the maximum criterion, to 1e-12 relative).
        if got != t:
            sigma = _between_class_variance(u8)
            np.testing.assert_allclose(sigma[[got, int(t)]], sigma.max(), rtol=1e-12)
        keep = (u8 > t).astype(np.uint8)
        for k in (3, 5):
            ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
            ref = cv2.morphologyEx(cv2.morphologyEx(keep, cv2.MORPH_OPEN, ker), cv2.MORPH_CLOSE, ker)
            got_mask = open_close(tf.constant(keep[None], tf.float32), ellipse_kernel(k)).numpy()[0]
            # Exact: min/max of 0/1 values (the -1e9 outside the kernel never wins) is exact
            # in float32 on any CPU.
            np.testing.assert_array_equal(got_mask.astype(np.uint8), ref)


def _small_cnn() -> keras.Model:
    """breastcam's head contract (logits Dense, softmax probabilities) on three convolutions."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, keras.layers.Activation("softmax", name="probabilities")(x), name="small_cnn")


# The small CNN keeps the developer loop fast; DALAResNet50 (paper A's model, custom layers)
# is the same check on a real model, run in CI.
@pytest.fixture(scope="module", params=["small_cnn", pytest.param("dalaresnet50", marks=pytest.mark.slow)])
def exported(request, tmp_path_factory, breakhis_root):
    tmp = tmp_path_factory.mktemp("export")
    if request.param == "small_cnn":
        keras_model = _small_cnn()
    else:
        keras_model = models.build(request.param, 2, (SIZE, SIZE, 3))
    out = export_model(keras_model, tmp / "sm", class_names=["benign", "malignant"],
                       preprocessing="minus_one_one", cam_params={"n_samples": 4})
    images = sorted(breakhis_root.rglob("*.png"))[:3]
    return keras_model, out, images


def test_savedmodel_matches_keras_and_python_cam_in_a_new_process(exported, tmp_path):
    keras_model, out, images = exported
    pixels = Predictor(out).load(images)
    np.save(tmp_path / "pixels.npy", pixels)
    script = textwrap.dedent(
        f"""
        import numpy as np, tensorflow as tf
        sm = tf.saved_model.load({str(out)!r})
        x = tf.constant(np.load({str(tmp_path / 'pixels.npy')!r}))
        p = sm.signatures["serving_default"](images=x)["probabilities"].numpy()
        e = sm.signatures["explain"](images=x)
        np.savez({str(tmp_path / 'out.npz')!r}, p=p, cam=e["cam"].numpy(), t=e["threshold"].numpy(),
                 p2=e["probabilities"].numpy())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")

    x = get_preprocessor("minus_one_one")(tf.constant(pixels)).numpy()
    expected_p = keras_model.predict(x, verbose=0)
    np.testing.assert_allclose(got["p"], expected_p, atol=1e-5)
    np.testing.assert_allclose(got["p2"], expected_p, atol=1e-5)

    cam = get_cam("dtgradcam", keras_model, n_samples=4)
    maps = cam(x)
    # The graph (fresh process) and the Python CAM differ by float32 noise: a few map pixels may
    # round to the next grey level, moving Otsu's threshold by at most a level and flipping the
    # pixels that sit on it. Kept regions match by IoU, kept values within 1e-4.
    np.testing.assert_allclose(got["t"], cam.last_thresholds_, atol=1.0)
    assert_thresholded_maps_close(got["cam"], maps, atol=1e-4)


def test_predict_images_writes_overlays_and_csv(exported, tmp_path):
    _, out, images = exported
    df = predict_images(out, images, explain=True, out_dir=tmp_path)
    assert list(df["path"]) == [str(p) for p in images]
    np.testing.assert_allclose(df[["prob_benign", "prob_malignant"]].sum(axis=1), 1.0, atol=1e-5)
    for p in images:
        overlay = cv2.imread(str(tmp_path / f"{p.stem}_overlay.png"))
        assert overlay is not None and overlay.shape[:2] == cv2.imread(str(p)).shape[:2]
    assert (tmp_path / "predictions.csv").exists()
    meta = json.loads((out / "breastcam.json").read_text())
    assert meta["class_names"] == ["benign", "malignant"]


def test_predict_images_takes_a_folder_chunk_by_chunk(exported, tmp_path):
    """A folder is searched for images; chunks of 2 give the probabilities and maps of one pass."""
    import shutil

    from breastcam.errors import UsageError

    _, out, images = exported
    folder = tmp_path / "in" / "nested"
    folder.mkdir(parents=True)
    for p in images:
        shutil.copy(p, folder / p.name)
    whole = predict_images(out, images, explain=True, out_dir=tmp_path / "whole")
    chunked = predict_images(out, tmp_path / "in", explain=True, out_dir=tmp_path / "chunked", chunk=2)
    assert [Path(p).name for p in chunked["path"]] == sorted(p.name for p in images)
    by_name = whole.assign(name=[Path(p).name for p in whole["path"]]).set_index("name")
    np.testing.assert_allclose(chunked[["prob_benign", "prob_malignant"]].to_numpy(),
                               by_name.loc[[Path(p).name for p in chunked["path"]],
                                           ["prob_benign", "prob_malignant"]].to_numpy(), atol=1e-5)
    for p in images:  # other batch sizes sum in another order: Otsu may move a grey level (_tolerance)
        assert_thresholded_maps_close(np.load(tmp_path / "chunked" / f"{p.stem}_dtgradcam.npy"),
                                      np.load(tmp_path / "whole" / f"{p.stem}_dtgradcam.npy"), atol=1e-4)
    with pytest.raises(UsageError, match="--out"):
        predict_images(out, images, explain=True)
