"""Macenko stain normalisation: TensorFlow against the NumPy reference, edge tiles, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from breastcam.stain import Macenko, MacenkoNumpy
from breastcam.stain.macenko_numpy import estimate_stains

from _tolerance import assert_images_close

SIZE = (224, 224)
REFERENCE = "SOB_B_A-14-22549AB-40-001.png"


def _load(path, size=None) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(image)


@pytest.fixture(scope="module")
def breakhis_files(breakhis_root):
    files = sorted(breakhis_root.rglob("*.png"), key=lambda p: p.name)
    assert len(files) == 20
    ref = next(f for f in files if f.name == REFERENCE)
    return ref, [f for f in files if f != ref]


@pytest.fixture(scope="module")
def tiles(breakhis_files):
    """The reference and six other real BreakHis images, resized to 224 x 224."""
    ref, others = breakhis_files
    return _load(ref, SIZE), np.stack([_load(f, SIZE) for f in others[::3]])


@pytest.fixture(scope="module")
def fitted(tiles):
    return Macenko().fit(tiles[0])


def _edge_tiles() -> dict[str, np.ndarray]:
    h, w = SIZE
    rng = np.random.default_rng(0)
    white = np.full((h, w, 3), 250, np.uint8)
    near = np.full((h, w, 3), 245, np.uint8)
    near.reshape(-1, 3)[rng.choice(h * w, 10, replace=False)] = (200, 120, 170)
    conc = rng.uniform(0.2, 1.5, size=(h, w, 1))
    single = np.clip(np.rint(240.0 * np.exp(-conc * np.array([0.65, 0.70, 0.29]))), 0, 255)
    return {"white": white, "near_white_ten_pink": near, "single_stain": single.astype(np.uint8)}


def test_fit_matches_numpy_reference(tiles, fitted):
    ref = MacenkoNumpy().fit(tiles[0])
    np.testing.assert_allclose(fitted.stain_matrix_, ref.stain_matrix_, atol=1e-3)
    np.testing.assert_allclose(fitted.max_concentrations_, ref.max_concentrations_, rtol=1e-3)
    # Hematoxylin first: larger red OD component; unit vectors.
    assert fitted.stain_matrix_[0, 0] > fitted.stain_matrix_[0, 1]
    np.testing.assert_allclose(np.linalg.norm(fitted.stain_matrix_, axis=0), 1.0, atol=1e-5)


def test_tf_agrees_with_numpy_on_real_images(tiles, fitted):
    numpy_ref = MacenkoNumpy().set_reference(fitted.stain_matrix_, fitted.max_concentrations_)
    out, flags = fitted.transform(tiles[1], return_flags=True)
    expected, expected_flags = numpy_ref.transform(tiles[1], return_flags=True)
    assert out.dtype == tf.uint8 and out.shape == tiles[1].shape
    assert not flags.numpy().any() and not expected_flags.any()
    diff = np.abs(out.numpy().astype(int) - expected.astype(int))
    assert diff.mean() < 1.0, diff.mean()
    assert diff.max() <= 2
    # It really normalises: the images change, towards the reference's colours.
    assert np.abs(out.numpy().astype(int) - tiles[1].astype(int)).mean() > 2.0


def test_full_size_image_and_float_input(breakhis_files, fitted):
    image = _load(breakhis_files[1][0])  # 700 x 460, as stored
    numpy_ref = MacenkoNumpy().set_reference(fitted.stain_matrix_, fitted.max_concentrations_)
    out = fitted.transform(image[None]).numpy()[0]
    diff = np.abs(out.astype(int) - numpy_ref.transform(image).astype(int))
    assert diff.mean() < 1.0
    from_float = fitted.transform(image[None].astype(np.float32)).numpy()[0]
    assert np.abs(from_float.astype(int) - out.astype(int)).mean() < 0.05


@pytest.mark.parametrize("name", ["white", "near_white_ten_pink", "single_stain"])
def test_edge_tiles_come_back_unchanged_and_counted(fitted, name):
    tile = _edge_tiles()[name]
    fitted.reset_counters()
    out, flags = fitted.transform(tile[None], return_flags=True)
    assert out.dtype == tf.uint8
    assert bool(flags.numpy()[0])
    np.testing.assert_array_equal(out.numpy()[0], tile)
    assert int(fitted.fallback_count.numpy()) == 1 and int(fitted.images_seen.numpy()) == 1
    assert fitted.last_fallback_mask.tolist() == [True]
    # The NumPy reference falls back on the same tiles, without NaN or warnings.
    numpy_ref = MacenkoNumpy().set_reference(fitted.stain_matrix_, fitted.max_concentrations_)
    expected, flag = numpy_ref.transform(tile, return_flags=True)
    assert flag and np.array_equal(expected, tile)


def test_edge_tile_reasons():
    tiles = _edge_tiles()
    assert estimate_stains(tiles["white"])[0].reason == "too little tissue"
    assert estimate_stains(tiles["near_white_ten_pink"])[0].tissue_pixels == 10
    assert estimate_stains(tiles["single_stain"])[0].reason == "single stain"


def test_mixed_batch_falls_back_per_image(tiles, fitted):
    white = _edge_tiles()["white"]
    batch = np.stack([tiles[1][0], white, tiles[1][1]])
    fitted.reset_counters()
    out, flags = fitted.transform(batch, return_flags=True)
    assert flags.numpy().tolist() == [False, True, False]
    np.testing.assert_array_equal(out.numpy()[1], white)
    assert np.isfinite(out.numpy().astype(float)).all()
    assert int(fitted.fallback_count.numpy()) == 1 and int(fitted.images_seen.numpy()) == 3
    # Batch mates do not interact: image 0 alone is image 0 in the batch, up to float32 rounding
    # (another batch size sums in another order; a value on a .5 may round the other way).
    alone = fitted.transform(batch[[0]]).numpy()[0]
    assert_images_close(out.numpy()[0], alone)
    assert_images_close(out.numpy()[2], fitted.transform(batch[[2]]).numpy()[0])


def test_min_tissue_pixels_is_a_parameter(tiles, fitted):
    strict = Macenko(min_tissue_pixels=224 * 224)  # every pixel must be tissue
    strict.set_reference(fitted.stain_matrix_, fitted.max_concentrations_)
    _, flags = strict.transform(tiles[1][:2], return_flags=True)
    assert flags.numpy().all()


def test_json_round_trip_gives_identical_output(tmp_path, tiles, fitted):
    path = fitted.save(tmp_path / "macenko.json")
    loaded = Macenko.load(path)
    np.testing.assert_array_equal(loaded.stain_matrix_, fitted.stain_matrix_)
    np.testing.assert_array_equal(loaded.max_concentrations_, fitted.max_concentrations_)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(
        loaded.transform(tiles[1]).numpy(), fitted.transform(tiles[1]).numpy()
    )


def test_errors_say_what_is_wrong(tmp_path, tiles):
    with pytest.raises(RuntimeError, match="not fitted"):
        Macenko().transform(tiles[1])
    with pytest.raises(ValueError, match="reference image cannot be used"):
        Macenko().fit(_edge_tiles()["white"])
    with pytest.raises(ValueError, match="batch"):
        Macenko.with_default_reference().transform(tiles[0][..., 0])
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a saved Macenko reference"):
        Macenko.load(bad)
    with pytest.raises(ValueError, match="alpha"):
        Macenko(alpha=60)


def test_default_reference_and_graph_mode(tiles):
    normaliser = Macenko.with_default_reference()
    eager = normaliser.transform(tiles[1][:2]).numpy()
    graph = tf.function(lambda x: normaliser.transform(x))(tf.constant(tiles[1][:2])).numpy()
    assert_images_close(eager, graph)  # graph optimisations may reorder float32 sums


def test_single_image_call_is_the_batch_transform(tiles, fitted):
    one = fitted(tf.constant(tiles[1][0]))
    assert one.shape == SIZE + (3,) and one.dtype == tf.uint8
    np.testing.assert_array_equal(one.numpy(), fitted.transform(tiles[1][:1]).numpy()[0])


def test_a_failed_fit_leaves_the_instance_ready_for_the_next_image(tiles, fitted):
    # breastcam reproduce tries training images in turn with one instance until one fits
    macenko = Macenko()
    with pytest.raises(ValueError, match="cannot be used for Macenko fitting"):
        macenko.fit(np.full(SIZE + (3,), 250, np.uint8))  # background only
    assert not macenko.is_fitted
    macenko.fit(tiles[0])
    np.testing.assert_allclose(macenko.stain_matrix_, fitted.stain_matrix_, atol=1e-6)
    np.testing.assert_allclose(macenko.max_concentrations_, fitted.max_concentrations_, rtol=1e-6)
