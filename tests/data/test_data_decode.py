"""breastcam.data.decode: every format to uint8 RGB, bad files named, NumPy == graph decoding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from breastcam.data.decode import BadImageError, decode_as, decode_tf, read_image, sniff_route

RNG = np.random.default_rng(0)
# Smooth content, so that JPEG keeps it close to the original.
RGB = cv2.GaussianBlur(RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8), (7, 7), 0)
GREY = RGB[:, :, 1].copy()
# One traced function for all tests: the graph path of the pipeline, traced once.
graph_decode = tf.function(decode_tf, input_signature=[tf.TensorSpec([], tf.string)])


def _write_cv2(path: Path, image: np.ndarray) -> Path:
    """Write an RGB(A) or grey array with OpenCV (which wants BGR order)."""
    if image.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(image, code)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture(scope="module")
def breakhis_png(breakhis_root) -> Path:
    return sorted(breakhis_root.rglob("*.png"))[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """Generated images of every route, each with the RGB array read_image must return."""
    d = tmp_path_factory.mktemp("decode")
    grey3 = np.repeat(GREY[:, :, None], 3, axis=2)
    alpha = RNG.integers(0, 256, GREY.shape, dtype=np.uint8)
    deep = (GREY.astype(np.uint16) * 16)  # 12-bit values in a 16-bit container
    deep_expected = np.round(deep * (255.0 / deep.max())).astype(np.uint8)
    deep3 = np.repeat(deep_expected[:, :, None], 3, axis=2)
    out = {
        "png_rgb": (_write_cv2(d / "rgb.png", RGB), RGB),
        "png_grey": (_write_cv2(d / "grey.png", GREY), grey3),
        "png_rgba": (_write_cv2(d / "rgba.png", np.dstack([RGB, alpha])), RGB),
        "png_16bit": (_write_cv2(d / "deep.png", deep), deep3),
        "tif_rgb": (_write_cv2(d / "rgb.tif", RGB), RGB),
        "tiff_16bit": (_write_cv2(d / "deep.tiff", deep), deep3),
        "pgm": (_write_cv2(d / "grey.pgm", GREY), grey3),
        "ppm": (_write_cv2(d / "rgb.ppm", RGB), RGB),
        "bmp_24bit": (_write_cv2(d / "rgb.bmp", RGB), RGB),
        "bmp_palette": (_write_cv2(d / "grey.bmp", GREY), grey3),
    }
    # Best quality, no chroma subsampling: the decoded JPEG stays within a few levels of RGB.
    jpeg_options = [cv2.IMWRITE_JPEG_QUALITY, 100, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, 0x111111]
    assert cv2.imwrite(str(d / "rgb.jpg"), RGB[:, :, ::-1], jpeg_options)
    out["jpg"] = (d / "rgb.jpg", RGB)
    Image.fromarray(GREY).convert("LA").save(d / "grey_alpha.png")
    out["png_grey_alpha"] = (d / "grey_alpha.png", grey3)
    Image.fromarray(RGB).save(d / "rgb.gif")
    out["gif"] = (d / "rgb.gif", np.asarray(Image.open(d / "rgb.gif").convert("RGB")))
    return out


FORMATS = [
    "png_rgb", "png_grey", "png_rgba", "png_16bit", "png_grey_alpha", "tif_rgb", "tiff_16bit",
    "pgm", "ppm", "bmp_24bit", "bmp_palette", "jpg", "gif",
]


@pytest.mark.parametrize("name", FORMATS)
def test_read_image_values(files, name):
    path, expected = files[name]
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == expected.shape
    if name == "jpg":  # lossy, but only just
        difference = np.abs(image.astype(int) - expected)
        assert difference.mean() < 1 and difference.max() <= 4
    else:
        np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("name", FORMATS)
def test_decode_tf_matches_read_image(files, name):
    path, _ = files[name]
    np.testing.assert_array_equal(graph_decode(tf.constant(str(path))).numpy(), read_image(path))


def test_16bit_scaled_by_image_max_and_all_zero_stays_zero(tmp_path):
    ramp = np.array([[0, 1000, 2000, 4000]], np.uint16)
    image = read_image(_write_cv2(tmp_path / "ramp.png", ramp))
    np.testing.assert_array_equal(image[0, :, 0], [0, 64, 128, 255])  # 255 * x / 4000, rounded
    zeros = read_image(_write_cv2(tmp_path / "zeros.png", np.zeros((3, 4), np.uint16)))
    assert zeros.shape == (3, 4, 3) and not zeros.any()


def test_real_breakhis_png(breakhis_png):
    image = read_image(breakhis_png)
    assert image.shape == (460, 700, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, cv2.imread(str(breakhis_png))[:, :, ::-1])


def test_real_mias_pgm(mias_root):
    path = mias_root / "mdb001.pgm"
    image = read_image(path)
    assert image.shape == (1024, 1024, 3) and image.dtype == np.uint8
    assert (image[:, :, 0] == image[:, :, 1]).all() and (image[:, :, 1] == image[:, :, 2]).all()
    np.testing.assert_array_equal(image[:, :, 0], cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))


# --- bad files ---------------------------------------------------------------------------


def _bad_files(d: Path, breakhis_png: Path) -> dict[str, Path]:
    png = breakhis_png.read_bytes()
    jpg = cv2.imencode(".jpg", RGB)[1].tobytes()
    files = {
        "zero_byte.png": b"",
        "truncated.png": png[: len(png) // 2],
        "truncated_tail.png": png[:-20],  # cut inside the IEND chunk
        "truncated.jpg": jpg[: len(jpg) * 3 // 4],
        "text_renamed.png": b"patient,label\n1,benign\n" * 20,
        "garbage.tif": bytes(range(256)) * 4,
        "image.webp": png,  # a good PNG, but under an extension breastcam does not read
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return {name: d / name for name in files}


BAD = {
    "zero_byte.png": "empty",
    "truncated.png": "truncated",
    "truncated_tail.png": "truncated",
    "truncated.jpg": "truncated",
    "text_renamed.png": "not a readable image",
    "garbage.tif": "not a readable image",
    "image.webp": "unsupported extension",
    "missing.png": "does not exist",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_raises_bad_image_error_naming_it(tmp_path, breakhis_png, name):
    _bad_files(tmp_path, breakhis_png)
    path = tmp_path / name
    with pytest.raises(BadImageError) as info:
        read_image(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.path == str(path) and BAD[name] in err.reason
    assert str(path) in str(err) and "breastcam validate" in str(err)


@pytest.mark.parametrize(
    "name", ["zero_byte.png", "truncated.png", "truncated.jpg", "text_renamed.png"]
)
def test_decode_tf_error_names_the_file(tmp_path, breakhis_png, name):
    path = _bad_files(tmp_path, breakhis_png)[name]
    with pytest.raises(tf.errors.InvalidArgumentError, match=name):
        graph_decode(tf.constant(str(path)))


# --- one route per dataset (decode_as): the same pixels, a truncated file still named --------


def test_decode_as_matches_decode_tf_and_sniffs_the_route(files):
    routes = {name: sniff_route(path) for name, (path, _) in files.items()}
    assert "png" in routes.values() and "jpeg" in routes.values() and "general" in routes.values()
    for name, (path, _) in files.items():
        if routes[name] == "general":
            continue
        decode = tf.function(lambda p, r=routes[name]: decode_as(p, r))
        np.testing.assert_array_equal(decode(tf.constant(str(path))).numpy(), read_image(path),
                                      err_msg=name)


@pytest.mark.parametrize("name,route", [("truncated_tail.png", "png"), ("truncated.jpg", "jpeg")])
def test_decode_as_truncated_file_error_names_it(tmp_path, breakhis_png, name, route):
    path = _bad_files(tmp_path, breakhis_png)[name]
    assert sniff_route(path) == route
    decode = tf.function(lambda p: decode_as(p, route))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{name}.*truncated"):
        decode(tf.constant(str(path)))
