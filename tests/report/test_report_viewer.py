"""The offline CAM viewer: ``explain --html`` with several methods writes one self-contained page
that headless Chromium opens without a network, showing every image and switching method (the
state lives in the address); 200 images at 224 px with three methods and two classes stay under
50 MB."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from breastcam.explain.viewer_data import ViewerItem, region_boxes
from breastcam.report.viewer import write_viewer

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _chromium():
    if CHROMIUM is None:  # CI (.ci/run installs it) must not pass by skipping this check
        reason = "Chromium not installed (apt-get install chromium): headless viewer check"
        if os.environ.get("CI"):
            pytest.fail(reason + " cannot run under CI")
        pytest.skip(reason + " skipped")
    return CHROMIUM


def _open(page, fragment: str, *, screenshot=None) -> str:
    """The DOM after the page's script ran (or a screenshot), offline: no network flag needed, the
    page has nothing to fetch."""
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--virtual-time-budget=5000", "--window-size=1100,700"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*args, page.as_uri() + fragment], capture_output=True, text=True, timeout=120)
    return done.stdout


@pytest.fixture(scope="module")
def viewer(tmp_path_factory, breakhis_root, user_keras_file):
    from breastcam.cli import main

    tmp = tmp_path_factory.mktemp("viewer")
    images = sorted(breakhis_root.rglob("*.png"))[:4]
    out = tmp / "cams"
    assert main(["explain", "--model", str(user_keras_file), "--images", *map(str, images),
                 "--preprocessing", "minus_one_one", "--method", "gradcam", "dtgradcam", "--html",
                 "--param", "n_samples=2", "--out", str(out), "--quiet"]) == 0
    return out, images


def test_explain_html_writes_one_self_contained_page_and_a_folder_per_method(viewer):
    out, images = viewer
    page = out / "viewer.html"
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']https?:""", text)  # nothing to fetch from a network
    assert text.count('"name":') == len(images)
    for method in ("gradcam", "dtgradcam"):  # each method's overlays in its own folder
        assert len(list((out / method).glob("*_overlay.png"))) == len(images)


def test_chromium_shows_every_image_and_switches_method(viewer, tmp_path):
    out, images = viewer
    page = out / "viewer.html"
    dom = _open(page, "#image=1&method=dtgradcam&class=1")
    assert len(re.findall(r'<img src="data:image/jpeg', dom)) == len(images)  # the grid: every image
    assert 'data-method="dtgradcam"' in dom and 'data-image="1"' in dom and 'data-drawn="yes"' in dom
    assert "dtgradcam map for class class_1 (image 2 of 4)" in dom  # a user model names its classes by index
    dom = _open(page, "#image=0&method=gradcam")
    assert 'data-method="gradcam"' in dom and 'data-image="0"' in dom
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    _open(page, "#image=0&method=gradcam&opacity=0.8", screenshot=a)
    _open(page, "#image=0&method=dtgradcam&opacity=0.8", screenshot=b)
    assert a.stat().st_size > 10_000 and b.stat().st_size > 10_000
    assert a.read_bytes() != b.read_bytes()  # switching the method changes what is drawn


def test_two_hundred_images_at_224_px_fit_in_50_mb(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    items = []
    for i in range(200):
        image = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)  # noise: the worst case for JPEG
        cx, cy = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
        maps = {m: {0: blob, 1: 1 - blob} for m in ("gradcam", "gradcampp", "dtgradcam")}
        items.append(ViewerItem(name=f"img{i}.png", image=image, probabilities=[0.3, 0.7], target=1,
                                maps=maps, uncertainty=0.61, prediction_set=[1],
                                boxes={"dtgradcam": region_boxes(blob > 0.5)}))
    page = write_viewer(tmp_path / "viewer.html", items, ["gradcam", "gradcampp", "dtgradcam"], ["benign", "malignant"])
    assert page.stat().st_size < 50e6, page.stat().st_size
