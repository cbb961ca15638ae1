"""Test-time augmentation: K views of each test image through the run's model, averaged.

``evaluate --uncertainty tta:K``: copy 0 is the image itself, copies 1..K-1 are drawn from the
run's own online augmentation recipe (``dala``: rotation + horizontal flip; ``ernet``: its
geometric family; runs with no online recipe use ``dala``'s rotation + flip), seeded. All K views
of a batch go through the network in one call (one ``[B x K]`` batch). The mean probabilities
and their entropy (``uncertainty``) go into ``predictions.csv`` beside the single-view ones.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from breastcam.errors import UsageError

ONLINE = ("dala", "ernet")


def parse_uncertainty(spec: str | None) -> tuple[str, int]:
    """``"tta:8"`` -> ``("tta", 8)``; ``None`` / ``"none"`` -> ``("none", 1)``."""
    if spec in (None, "", "none"):
        return "none", 1
    kind, _, k = str(spec).partition(":")
    if kind == "mc":
        raise UsageError("--uncertainty mc:K (MC dropout) is not available: breastcam's models put "
                         "dropout only before the classifier and Keras cannot switch dropout on "
                         "without batch statistics; use tta:K")
    if kind != "tta":
        raise UsageError(f"--uncertainty {spec!r}: write tta:K (e.g. tta:8) or none")
    try:
        k = int(k)
    except ValueError:
        raise UsageError(f"--uncertainty {spec!r}: K must be a whole number, e.g. tta:8") from None
    if k < 2:
        raise UsageError(f"--uncertainty {spec!r}: K must be at least 2 (the image and one augmented view)")
    return "tta", k


class TestTimeAugmentation:
    """A ``predict_on_batch`` that returns the mean over K views (the evaluate loop's interface)."""

    __test__ = False  # not a pytest class

    def __init__(self, trained, k: int, recipe: str | None, seed: int = 0):
        from breastcam.augment import get_recipe

        self.trained, self.k = trained, int(k)
        self.raw = trained.uncalibrated()
        self.recipe = recipe if recipe in ONLINE else "dala"
        self.augment = get_recipe(self.recipe, seed=seed, image_size=trained.image_size)
        self.single: list[np.ndarray] = []  # view 0 (the image itself) of every batch, in order
        self.single_raw: list[np.ndarray] = []  # the same before calibration

    def views(self, pixels) -> tf.Tensor:
        """``[B x K, h, w, 3]``: each image, then K - 1 augmented copies of it."""
        x = tf.cast(tf.convert_to_tensor(pixels), tf.float32)
        b = tf.shape(x)[0]
        copies = tf.repeat(x, self.k - 1, axis=0)
        augmented = tf.clip_by_value(self.augment(copies), 0.0, 255.0)
        both = tf.concat([x[:, None], tf.reshape(augmented, [b, self.k - 1, *x.shape[1:]])], axis=1)
        return tf.reshape(both, [-1, *x.shape[1:]])

    def predict_on_batch(self, pixels) -> np.ndarray:
        """The mean over the K views; the single-view probabilities are kept in ``single``."""
        raw = self.raw.predict_on_batch(self.views(pixels))
        p = self.trained.calibrate(raw).numpy() if self.trained.calibration else raw
        p = p.reshape(-1, self.k, p.shape[-1])
        self.single.append(p[:, 0])
        self.single_raw.append(raw.reshape(-1, self.k, raw.shape[-1])[:, 0])
        return p.mean(axis=1)
