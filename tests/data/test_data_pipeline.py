"""breastcam.data.pipeline.make_dataset: values, order, labels, cache and file errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from breastcam.data.decode import read_image
from breastcam.data.pipeline import find_bad_images, image_paths, make_dataset
from breastcam.data.preprocess import get_preprocessor

SIZE = (24, 32)


def _collect(ds):
    """All batches of one epoch as (images, labels) NumPy arrays, concatenated."""
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture()
def small_set(tmp_path) -> tuple[pd.DataFrame, Path]:
    """10 small PNGs of different sizes; row i has label_index i, so labels reveal the order."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(10):
        image = rng.integers(0, 256, (20 + 3 * i, 30 + i, 3), dtype=np.uint8)
        rel = f"img_{i}.png"
        cv2.imwrite(str(tmp_path / rel), image)
        rows.append(dict(path=rel, label="x", label_index=i, patient_id=str(i)))
    return pd.DataFrame(rows), tmp_path


def _direct(path, size, preprocessing="minus_one_one") -> np.ndarray:
    """The reference: read_image, antialiased bilinear resize rounded to uint8, preprocessing."""
    resized = tf.image.resize(read_image(path), size, method="bilinear", antialias=True)
    resized = np.clip(np.round(resized.numpy()), 0, 255).astype(np.float32)
    return get_preprocessor(preprocessing)(tf.constant(resized)).numpy()


@pytest.mark.parametrize("preprocessing", ["minus_one_one", "caffe"])
def test_values_equal_direct_decode_resize_preprocess(breakhis_root, preprocessing):
    labels = pd.read_csv(breakhis_root / "labels.csv")[:5]
    malignant = (labels["label"] == "malignant").astype(int)
    df = pd.DataFrame({"path": labels["relpath"], "label_index": malignant})
    images, got = _collect(
        make_dataset(df, breakhis_root, preprocessing=preprocessing, batch_size=2)
    )
    assert images.shape == (5, 224, 224, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(got, df["label_index"].to_numpy())
    for i, path in enumerate(image_paths(df, breakhis_root)):
        np.testing.assert_allclose(images[i], _direct(path, (224, 224), preprocessing), atol=1e-5)


def test_pgm_goes_through_the_pipeline(mias_root):
    df = pd.DataFrame({"path": ["mdb001.pgm", "mdb002.pgm"], "label_index": [0, 1]})
    images, _ = _collect(make_dataset(df, mias_root, image_size=(64, 64)))
    np.testing.assert_allclose(images[1], _direct(mias_root / "mdb002.pgm", (64, 64)), atol=1e-5)


def test_batch_shapes_and_drop_remainder(small_set):
    df, root = small_set
    shapes = [(x.shape, y.dtype) for x, y in make_dataset(df, root, image_size=SIZE, batch_size=4)]
    assert shapes == [((4, 24, 32, 3), tf.int32)] * 2 + [((2, 24, 32, 3), tf.int32)]
    ds = make_dataset(df, root, image_size=SIZE, batch_size=4, drop_remainder=True)
    assert [x.shape[0] for x, _ in ds] == [4, 4]
    assert ds.element_spec[0].shape.as_list() == [4, 24, 32, 3]


def test_absolute_paths_accepted(small_set):
    df, root = small_set
    absolute = df.assign(path=[str(root / p) for p in df["path"]])
    a, _ = _collect(make_dataset(df, root, image_size=SIZE))
    b, _ = _collect(make_dataset(absolute, "/nonexistent-root", image_size=SIZE))
    np.testing.assert_array_equal(a, b)


def test_labels_one_hot(small_set):
    df, root = small_set
    df = df.assign(label_index=[0, 1, 2] * 3 + [0])
    _, labels = _collect(make_dataset(df, root, image_size=SIZE, label_mode="onehot"))
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels, np.eye(3, dtype=np.float32)[df["label_index"]])
    one_hot = dict(image_size=SIZE, label_mode="categorical")
    _, wider = _collect(make_dataset(df, root, num_classes=5, **one_hot))
    assert wider.shape == (10, 5)
    declared = df.copy()
    declared.attrs["classes"] = ["a", "b", "c", "d"]
    _, from_attrs = _collect(make_dataset(declared, root, **one_hot))
    assert from_attrs.shape == (10, 4)


def test_label_mode_none_yields_images_only(small_set):
    df, root = small_set
    unlabelled = df.drop(columns="label_index")
    batch = next(iter(make_dataset(unlabelled, root, image_size=SIZE, label_mode=None)))
    assert isinstance(batch, tf.Tensor) and batch.shape == (10, 24, 32, 3)


def _orders(ds, epochs=2):
    return [_collect(ds)[1].tolist() for _ in range(epochs)]


@pytest.mark.parametrize("cache", [None, "memory"])
def test_shuffle_is_seeded_and_reshuffles_each_epoch(small_set, cache):
    df, root = small_set
    kwargs = dict(image_size=SIZE, batch_size=3, shuffle=True, cache=cache, num_classes=10)
    first = _orders(make_dataset(df, root, seed=7, **kwargs))
    again = _orders(make_dataset(df, root, seed=7, **kwargs))
    other = _orders(make_dataset(df, root, seed=8, **kwargs))
    assert first == again  # same seed: same sequence of epoch orders
    assert first[0] != first[1]  # a new order every epoch
    assert first != other
    assert all(sorted(order) == list(range(10)) for order in first + other)
    assert _orders(make_dataset(df, root, image_size=SIZE), epochs=1) == [list(range(10))]


@pytest.mark.parametrize("cache", [None, "memory"])
def test_epoch_seeds_make_each_epoch_depend_on_its_own_seed_only(small_set, cache):
    """A resumed run rebuilds the dataset from its next epoch on: the orders must replay."""
    df, root = small_set
    # tf.data mixes TensorFlow's global seed into every shuffle seed: training sets it from the
    # run's seed before building the datasets, in a fresh and in a resumed run alike.
    keras.utils.set_random_seed(0)
    kwargs = dict(image_size=SIZE, batch_size=4, shuffle=True, cache=cache, num_classes=10)
    full = _orders(make_dataset(df, root, epoch_seeds=[11, 12, 13], **kwargs), epochs=1)
    assert len(full) == 1 and len(full[0]) == 30  # three epochs of 10 back to back
    epochs = [full[0][k * 10:(k + 1) * 10] for k in range(3)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    keras.utils.set_random_seed(0)
    resumed = _orders(make_dataset(df, root, epoch_seeds=[12, 13], **kwargs), epochs=1)
    assert resumed[0] == epochs[1] + epochs[2]


def test_images_follow_their_labels_when_shuffled(small_set):
    df, root = small_set
    images, labels = _collect(make_dataset(df, root, image_size=SIZE, shuffle=True, seed=3))
    for image, label in zip(images, labels):
        np.testing.assert_allclose(image, _direct(root / df["path"][label], SIZE), atol=1e-5)


@pytest.mark.parametrize("cache", ["memory", "file"])
def test_cache_replays_epoch_one(small_set, tmp_path, cache):
    df, root = small_set
    target = "memory" if cache == "memory" else tmp_path / "cache" / "train"
    ds = make_dataset(df, root, image_size=SIZE, batch_size=4, cache=target)
    first = _collect(ds)
    for path in image_paths(df, root):  # epoch 2 must not read the files again
        Path(path).unlink()
    second = _collect(ds)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_stain_and_augment_are_applied_in_their_places(small_set):
    df, root = small_set
    seen = {}

    def stain(image):
        seen["stain"] = (image.dtype, image.shape.as_list())
        return 255 - image

    def augment(images):
        seen["augment"] = (images.dtype, images.shape.as_list())
        return images * 0.5

    images, _ = _collect(
        make_dataset(
            df[:2], root, image_size=SIZE, preprocessing="none", stain=stain, augment=augment
        )
    )
    assert seen == {"stain": (tf.uint8, [24, 32, 3]), "augment": (tf.float32, [None, 24, 32, 3])}
    expected = (255.0 - _direct(root / "img_0.png", SIZE, "none")) * 0.5
    np.testing.assert_allclose(images[0], expected, atol=1e-5)


def test_missing_files_are_all_listed(small_set):
    df, root = small_set
    extra = pd.DataFrame({"path": [f"gone_{i}.png" for i in range(25)], "label_index": 0})
    with pytest.raises(FileNotFoundError) as info:
        make_dataset(pd.concat([df, extra]), root)
    message = str(info.value)
    assert "25 of 35" in message and "and 5 more" in message and "breastcam validate" in message
    assert all(f"gone_{i}.png" in message for i in range(20))
    assert "gone_20.png" not in message


def _corrupt(df, root, name="broken.png"):
    (root / name).write_bytes((root / df["path"][3]).read_bytes()[:200])  # a truncated PNG
    return df.assign(path=[name if i == 3 else p for i, p in enumerate(df["path"])])


def test_bad_image_raises_naming_the_file(small_set):
    df, root = small_set
    ds = make_dataset(_corrupt(df, root), root, image_size=SIZE, batch_size=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="broken.png"):
        _collect(ds)


def test_bad_image_skip(small_set):
    df, root = small_set
    df = _corrupt(df, root)
    bad = find_bad_images(df, root)
    assert [path for path, _ in bad] == ["broken.png"] and "truncated" in bad[0][1]
    with pytest.warns(UserWarning, match="broken.png"):
        ds = make_dataset(df, root, image_size=SIZE, on_bad_image="skip")
    _, labels = _collect(ds)
    assert labels.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(label_mode="int"), "label_mode"),
        (dict(on_bad_image="ignore"), "on_bad_image"),
        (dict(preprocessing="imagenet"), "unknown preprocessing"),
        (dict(image_size=(0, 10)), "image_size"),
        (dict(num_classes=5), r"outside \[0, 5\)"),
    ],
)
def test_bad_arguments(small_set, kwargs, match):
    df, root = small_set
    with pytest.raises(ValueError, match=match):
        make_dataset(df, root, **kwargs)
