"""Small Keras models for the CAM tests (hand-built, fixed weights where a closed form is needed)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

# Closed-form model: input -> 1x1 Conv2D (fixed weights, the CAM layer) -> GAP -> Dense logits.
CONV_W = np.array([[1.0, -2.0, 0.5], [0.5, 1.0, -1.0]], np.float32)  # (in=2, out=3)
DENSE_W = np.array([[2.0, -1.0], [-0.5, 1.5], [1.0, 0.25]], np.float32)  # (channels=3, classes=2)
DENSE_B = np.array([0.1, -0.2], np.float32)


def linear_model(size: int = 8, strides: int = 1, name: str = "linear_cam") -> keras.Model:
    inp = keras.Input((size, size, 2))
    conv = keras.layers.Conv2D(3, 1, strides=strides, use_bias=False, name="cam")
    x = conv(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, name="logits")
    out = keras.layers.Activation("softmax", name="probabilities")(dense(x))
    model = keras.Model(inp, out, name=name)
    conv.set_weights([CONV_W[None, None]])
    dense.set_weights([DENSE_W, DENSE_B])
    return model


def small_cnn(size: int = 32, classes: int = 3, seed: int = 0, name: str = "small_cnn") -> keras.Model:
    """A few conv/BN/ReLU layers with random (seeded) weights, breastcam's head contract."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(24, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(classes, name="logits")(x)
    out = keras.layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inp, out, name=name)


def squares(n: int = 192, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 images hold a bright 8 x 8 square somewhere on noise; class 0 only noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, size, size, 3)).astype("float32")
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(2, size - 10, 2)
        x[i, r:r + 8, c:c + 8] += 1.5
    return x, y


def fit_tinycnn(x: np.ndarray, y: np.ndarray, epochs: int = 8) -> tuple[keras.Model, float]:
    """breastcam's tinycnn (seeded) fitted to ``(x, y)``: the model and its last training accuracy."""
    from breastcam.models import build

    keras.utils.set_random_seed(0)
    model = build("tinycnn", 2, tuple(x.shape[1:]), weights=None)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model, history.history["accuracy"][-1]


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    return small_cnn()


@pytest.fixture(scope="module")
def cnn_images() -> np.ndarray:
    rng = np.random.default_rng(1)
    base = rng.uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    # Smooth structure so the maps are not pure noise.
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    for i in range(len(base)):
        base[i] += np.stack([np.sin(3 * xx + i), np.cos(2 * yy - i), xx * yy], -1).astype(np.float32)
    return base
