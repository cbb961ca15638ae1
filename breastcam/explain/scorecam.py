"""Score-CAM (Wang et al. 2020): channel weights from forward passes on masked inputs.

For each image and each selected channel ``k`` of the CAM layer:

1. upsample the channel's activation to the input size (bilinear) and min-max normalise it to
   ``[0, 1]`` (a constant channel gives an all-zero mask);
2. mask the input: ``baseline + (x - baseline) * mask``. The baseline lives in the preprocessed
   domain: ``"zero"`` (default; the plain ``x * mask`` of the paper and of pytorch-grad-cam — for
   ``minus_one_one`` preprocessing it is mid-grey, for ``caffe`` the ImageNet mean colour) or
   ``"mean"`` (the image's own per-channel mean);
3. score the masked input with one forward pass: the target class's **logit** by default
   (``score="logit"``), or its softmax probability (``score="probability"``). Logits keep the
   differences between channels; probabilities of an untrained or saturated model are all near
   the same value and the softmax in step 4 then turns them into almost uniform weights;
4. the channel weights are the softmax of the scores over the selected channels.

The map is ``ReLU(sum_k w_k A_k)`` at the CAM layer's resolution, then resized and normalised.
The masked inputs of all images of a chunk run as batches of ``batch_size`` through one compiled
forward pass.

Channels whose normalised masks are identical (all constant channels among them) are scored
once: a trained network's sparse activations give such duplicates, and each costs a forward pass
(``last_passes_`` holds the passes of the last call).

``top_k`` (default 64; ``None`` = every channel) keeps, **per image**, the ``top_k`` channels
with the highest mean activation. Per image, not the union over the batch: tf-keras-vis's
``max_N`` scores every image of a batch on the union of all images' top channels, so its cost
grows with the batch (64, 113, 142, 175 channels for batches of 1, 4, 8, 32 on ResNet50) and an
image's map depends on its batch companions. All 2,048 channels of ResNet50 cost 2,048 forward
passes per image (about a minute per image on a CPU).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from breastcam.errors import ConfigError
from breastcam.explain.base import BaseCAM, normalize_maps, resize_maps

BASELINES = ("zero", "mean")
SCORES = ("logit", "probability")


class ScoreCAM(BaseCAM):
    name = "scorecam"
    uses_gradients = False

    def __init__(
        self,
        model,
        layer: str | None = None,
        *,
        top_k: int | None = 64,
        batch_size: int = 32,
        baseline: str = "zero",
        score: str = "logit",
    ):
        super().__init__(model, layer, batch_size=batch_size)
        if baseline not in BASELINES:
            raise ConfigError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        if score not in SCORES:
            raise ConfigError(f"score must be one of {SCORES}, got {score!r}")
        channels = self.probe.outputs[0].shape[-1]
        if channels is None:
            raise ConfigError(f"CAM layer {self.layer!r} has an unknown number of channels")
        if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ConfigError(f"top_k must be a positive int or None (all channels), got {top_k!r}")
        self.top_k = top_k
        self.k = int(channels if top_k is None else min(int(top_k), channels))
        self.baseline = baseline
        self.score = score
        target_spec = tf.TensorSpec((None,), tf.int32)
        self._select_fn = tf.function(self._select, input_signature=[self._input_spec, target_spec])
        self._score_fn = tf.function(
            self._score_masked,
            input_signature=[
                self._input_spec,
                tf.TensorSpec((None, None, None), tf.float32),
                tf.TensorSpec((None,), tf.int32),
                target_spec,
            ],
        )
        self._combine_fn = tf.function(
            self._combine,
            input_signature=[tf.TensorSpec((None, None, None, self.k), tf.float32),
                             tf.TensorSpec((None, self.k), tf.float32),
                             tf.TensorSpec((2,), tf.int32)],
        )

    def _select(self, x, targets):
        acts, logits = self.forward(x)
        targets = self.resolve_targets(logits, targets)
        strength = tf.reduce_mean(acts, axis=[1, 2])  # [B, C]
        idx = tf.math.top_k(strength, k=self.k, sorted=True).indices  # per image
        low = tf.gather(acts, idx, axis=3, batch_dims=1)  # [B, h, w, k]
        return low, targets, tf.nn.softmax(logits, axis=-1)

    def _score_masked(self, x, low, image_index, targets):
        masks = normalize_maps(resize_maps(low, tf.shape(x)[1:3]))[..., None]
        xb = tf.gather(x, image_index)
        if self.baseline == "mean":
            base = tf.reduce_mean(xb, axis=[1, 2], keepdims=True)
        else:
            base = tf.zeros_like(xb)
        _, logits = self.forward(base + (xb - base) * masks)
        if self.score == "probability":
            logits = tf.nn.softmax(logits, axis=-1)
        return tf.gather(logits, tf.gather(targets, image_index), axis=1, batch_dims=1)

    def _combine(self, low, scores, size):
        weights = tf.nn.softmax(scores, axis=-1)
        return self.finish(tf.einsum("bhwk,bk->bhw", low, weights), size)

    def _maps(self, x, targets):
        x_t = tf.constant(x)
        low, t, probs = self._select_fn(x_t, tf.constant(targets))
        b = x.shape[0]
        low_np = low.numpy()
        # One masked pass per DISTINCT mask of each image: a constant channel's mask is all zero
        # (every such channel scores the baseline), and two channels related by a positive affine
        # map have the same normalised mask (bilinear upsampling is linear). Scored pairs are
        # image-major, in batches of batch_size across the images of the chunk.
        reps, inverse = distinct_masks(low_np)
        pair_image = np.concatenate([np.full(len(r), i, np.int32) for i, r in enumerate(reps)])
        pair_channel = np.concatenate(reps).astype(np.int64)
        h, w = low_np.shape[1:3]
        pair_maps = low_np[pair_image, :, :, pair_channel]  # [pairs, h, w]; constant ones stay constant
        scores = []
        for start in range(0, len(pair_image), self.batch_size):
            stop = min(start + self.batch_size, len(pair_image))
            scores.append(self._score_fn(x_t, tf.constant(pair_maps[start:stop]),
                                         tf.constant(pair_image[start:stop]), t).numpy())
        flat = np.concatenate(scores)
        offsets = np.cumsum([0] + [len(r) for r in reps])
        full = np.stack([flat[offsets[i] + inverse[i]] for i in range(b)]).astype(np.float32)
        self.last_passes_ = int(len(pair_image))
        maps = self._combine_fn(low, tf.constant(full), tf.constant(x.shape[1:3], tf.int32))
        return maps.numpy(), t.numpy(), probs.numpy()


def distinct_masks(low: np.ndarray, tol: float = 1e-5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per image of ``low`` ``[B, h, w, k]``: the channels to score (one per distinct normalised
    mask, within ``tol`` of the mask range; all constant channels share one) and, for each of the
    k channels, the index of its representative among them."""
    reps, inverse = [], []
    for image in low:
        flat = image.reshape(-1, image.shape[-1]).T.astype(np.float64)  # [k, h*w]
        lo, hi = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
        span = hi - lo
        scale = np.maximum(np.abs(hi), np.abs(lo))
        varies = span > 1e-6 * scale  # the same test as normalize_maps
        norm = np.where(varies, (flat - lo) / np.where(varies, span, 1.0), 0.0)
        chosen: list[int] = []
        inv = np.empty(len(norm), np.int64)
        for c, mask in enumerate(norm):
            if chosen:
                gap = np.abs(norm[chosen] - mask).max(axis=1)
                j = int(gap.argmin())
                if gap[j] <= tol:
                    inv[c] = j
                    continue
            inv[c] = len(chosen)
            chosen.append(c)
        reps.append(np.asarray(chosen, np.int64))
        inverse.append(inv)
    return reps, inverse
