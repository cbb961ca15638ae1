"""Test-time samples of a prediction, averaged: augmented views (TTA) or dropout draws (MC).

``evaluate --uncertainty tta:K``: copy 0 is the image itself, copies 1..K-1 are drawn from the
run's own online augmentation recipe (``dala``: rotation + horizontal flip; ``ernet``: its
geometric family; runs with no online recipe use ``dala``'s rotation + flip), seeded. All K views
of a batch go through the network in one call (one ``[B x K]`` batch). The mean probabilities
and their entropy (``uncertainty``) go into ``predictions.csv`` beside the single-view ones.

``evaluate --uncertainty mc:K``: K copies of each image through the network with its dropout on
(:func:`breastcam.models.mc_dropout.with_mc_dropout`; batch normalisation stays in inference
mode), as one ``[B x K]`` batch, beside one ordinary pass. Models without dropout are refused.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from breastcam.errors import UsageError

ONLINE = ("dala", "ernet")
KINDS = ("tta", "mc")


def parse_uncertainty(spec: str | None) -> tuple[str, int]:
    """``"tta:8"`` -> ``("tta", 8)``; ``None`` / ``"none"`` -> ``("none", 1)``."""
    if spec in (None, "", "none"):
        return "none", 1
    kind, _, k = str(spec).partition(":")
    if kind not in KINDS:
        raise UsageError(f"--uncertainty {spec!r}: write tta:K (e.g. tta:8), mc:K (e.g. mc:20) or none")
    try:
        k = int(k)
    except ValueError:
        raise UsageError(f"--uncertainty {spec!r}: K must be a whole number, e.g. {kind}:8") from None
    if k < 2:
        raise UsageError(f"--uncertainty {spec!r}: K must be at least 2 (a mean of one sample says "
                         "nothing of its spread)")
    return kind, k


def sampler(kind: str, trained, k: int, recipe: str | None, seed: int = 0):
    """The ``predict_on_batch`` object of ``kind`` (``tta`` or ``mc``)."""
    if kind == "mc":
        return MonteCarloDropout(trained, k, seed=seed)
    return TestTimeAugmentation(trained, k, recipe, seed=seed)


class _Samples:
    """Shared bookkeeping: the served mean over K samples, and the single prediction (served and
    the network's own) of every batch, in order."""

    __test__ = False

    def __init__(self, trained, k: int):
        self.trained, self.k = trained, int(k)
        self.raw = trained.uncalibrated()
        self.single: list[np.ndarray] = []  # the ordinary prediction of every batch, in order
        self.single_raw: list[np.ndarray] = []  # the same before calibration

    def _serve(self, raw: np.ndarray) -> np.ndarray:
        return self.trained.calibrate(raw).numpy() if self.trained.calibration else raw

    def _keep(self, single_raw: np.ndarray, samples_raw: np.ndarray) -> np.ndarray:
        self.single_raw.append(single_raw)
        self.single.append(self._serve(single_raw))
        p = self._serve(samples_raw)
        return p.reshape(-1, self.k, p.shape[-1]).mean(axis=1)


class MonteCarloDropout(_Samples):
    """A ``predict_on_batch`` that returns the mean over K dropout draws."""

    kind = "mc"

    def __init__(self, trained, k: int, seed: int = 0):
        from breastcam.models.mc_dropout import with_mc_dropout

        super().__init__(trained, k)
        self.mc = with_mc_dropout(trained.network, seed=seed)  # refuses a model without dropout
        self.recipe = None

    def predict_on_batch(self, pixels) -> np.ndarray:
        x = self.trained.prepare(pixels)
        single = np.asarray(self.trained.network.predict_on_batch(x))
        draws = np.asarray(self.mc.predict_on_batch(tf.repeat(x, self.k, axis=0)))
        return self._keep(single, draws)


class TestTimeAugmentation(_Samples):
    """A ``predict_on_batch`` that returns the mean over K views (the evaluate loop's interface)."""

    kind = "tta"

    def __init__(self, trained, k: int, recipe: str | None, seed: int = 0):
        from breastcam.augment import get_recipe

        super().__init__(trained, k)
        self.recipe = recipe if recipe in ONLINE else "dala"
        self.augment = get_recipe(self.recipe, seed=seed, image_size=trained.image_size)

    def views(self, pixels) -> tf.Tensor:
        """``[B x K, h, w, 3]``: each image, then K - 1 augmented copies of it."""
        x = tf.cast(tf.convert_to_tensor(pixels), tf.float32)
        b = tf.shape(x)[0]
        copies = tf.repeat(x, self.k - 1, axis=0)
        augmented = tf.clip_by_value(self.augment(copies), 0.0, 255.0)
        both = tf.concat([x[:, None], tf.reshape(augmented, [b, self.k - 1, *x.shape[1:]])], axis=1)
        return tf.reshape(both, [-1, *x.shape[1:]])

    def predict_on_batch(self, pixels) -> np.ndarray:
        """The mean over the K views; view 0 (the image itself) is kept in ``single``."""
        raw = self.raw.predict_on_batch(self.views(pixels))
        return self._keep(raw.reshape(-1, self.k, raw.shape[-1])[:, 0], raw)
