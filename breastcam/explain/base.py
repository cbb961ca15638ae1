"""The shared machinery of every CAM method: one probe model, one compiled tape per batch.

A CAM method sees a Keras model through a *probe*: a functional model ``inputs -> [activations of
the CAM layer, input of the classifier head]`` built once. The class score is the **pre-softmax
logit** of the target class (the ``logits`` layer of breastcam's models; for other models the
final softmax is undone, see :func:`class_score_head`). Activations and the gradients of the
target logit are computed for the whole batch in one ``tf.GradientTape`` inside a
``tf.function`` whose batch dimension is ``None`` (one trace per model, whatever the batch size).

A method only says how to turn ``(activations, gradients)`` into a low-resolution map
(:meth:`BaseCAM.cam_image`, by default the channel-weighted sum with :meth:`BaseCAM.cam_weights`).
The base class then applies ReLU, resizes to the input resolution (bilinear) and min-max
normalises each map to ``[0, 1]``; a constant map becomes all zeros (never NaN). Everything stays
in TensorFlow until the final ``.numpy()``.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from breastcam.errors import ConfigError
from breastcam.explain.layers import AUTO, as_map, cam_tensor, resolve_layer, trace

# A map whose range is below this fraction of its magnitude is constant up to float noise.
_CONSTANT_RTOL = 1e-6


def class_score_head(model: keras.Model, inputs_of: dict | None = None, outputs_of: dict | None = None
                     ) -> tuple[keras.KerasTensor, Callable[[tf.Tensor], tf.Tensor]]:
    """``(tensor, head)`` such that ``head(tensor)`` is the model's pre-softmax class scores.

    - a layer named ``logits`` (every breastcam model): its output, ``head`` = identity;
    - a final ``Activation("softmax")``: its input;
    - a final layer with ``activation=softmax`` (e.g. ``Dense(n, activation="softmax")``): its
      input, and ``head`` recomputes the layer's affine part ``x @ kernel + bias``;
    - a final layer with a linear activation: the model output (already logits).
    Anything else (sigmoid outputs, multi-output models) is a ``ValueError``.
    """
    inputs_of, outputs_of = inputs_of or {}, outputs_of or {}
    names = {lyr.name for lyr in model.layers}
    if "logits" in names:
        return outputs_of.get("logits", model.get_layer("logits").output), _identity
    if len(model.outputs) != 1:
        raise ConfigError(f"model {model.name!r} has {len(model.outputs)} outputs; CAM methods need one")
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    act_name = getattr(activation, "__name__", str(activation))
    if isinstance(last, keras.layers.Activation) and act_name == "softmax":
        return inputs_of.get(last.name, last.input), _identity
    if act_name == "softmax" and isinstance(last, keras.layers.Dense):
        kernel, bias = last.kernel, last.bias

        def dense_head(x: tf.Tensor) -> tf.Tensor:
            y = tf.matmul(x, tf.cast(kernel, x.dtype))
            return y + tf.cast(bias, x.dtype) if bias is not None else y

        return inputs_of.get(last.name, last.input), dense_head
    if act_name in ("linear", "None") or activation is None:
        return outputs_of.get(last.name, model.outputs[0]), _identity
    raise ConfigError(
        f"cannot find the class logits of model {model.name!r}: its last layer {last.name!r} has "
        f"activation {act_name!r}; breastcam models end in Dense(name='logits') + softmax"
    )


def _identity(x: tf.Tensor) -> tf.Tensor:
    return x


def normalize_maps(maps: tf.Tensor) -> tf.Tensor:
    """Per-map min-max normalisation of ``[B, H, W]`` to ``[0, 1]``; constant maps become 0."""
    lo = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    span = hi - lo
    scale = tf.maximum(tf.abs(hi), tf.abs(lo))
    varies = span > _CONSTANT_RTOL * scale
    safe = tf.where(varies, span, tf.ones_like(span))
    return tf.where(varies, (maps - lo) / safe, tf.zeros_like(maps))


def resize_maps(maps: tf.Tensor, size: tuple[int, int] | tf.Tensor) -> tf.Tensor:
    """Bilinear resize of ``[B, h, w]`` maps to ``size`` = ``(H, W)``."""
    return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]


def to_batch(images, name: str = "images") -> np.ndarray:
    """``images`` as a float32 ``[B, H, W, C]`` array (a single ``[H, W, C]`` image gets B = 1)."""
    x = images.numpy() if isinstance(images, tf.Tensor) else np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ConfigError(f"{name} must be a batch [B, H, W, C] of preprocessed images, got shape {x.shape}")
    return x.astype(np.float32, copy=False)


def to_targets(targets, batch: int, classes: int | None = None) -> np.ndarray:
    """``targets`` (None, an int or one int per image) as int32 ``[B]``; -1 = predicted class.
    With ``classes``, a class index the model does not have is refused (a gather out of range
    would fail deep inside TensorFlow)."""
    if targets is None:
        return np.full((batch,), -1, dtype=np.int32)
    t = np.asarray(targets)
    if t.ndim == 0:
        t = np.full((batch,), int(t))
    if t.shape != (batch,):
        raise ConfigError(f"targets must be None, an int or {batch} ints (one per image), got shape {t.shape}")
    if classes is not None:
        bad = t[(t < -1) | (t >= classes)]
        if bad.size:
            raise ConfigError(f"target class {int(bad[0])} does not exist: the model has {classes} classes "
                              f"(0 to {classes - 1}; -1 or none: the predicted class)")
    return t.astype(np.int32)


class BaseCAM:
    """Batched class activation maps for one Keras model and one CAM layer.

    Subclasses override :meth:`cam_weights` (channel weights from activations and gradients) or
    :meth:`cam_image` (the low-resolution map itself). ``__call__`` splits the input in chunks of
    ``batch_size`` images and returns ``[B, H, W]`` float32 maps in ``[0, 1]`` at input resolution.
    After a call, ``last_targets_`` holds the class explained for each image and
    ``last_probabilities_`` the softmax of the logits of the (clean) images.
    """

    name = "base"
    uses_gradients = True

    def __init__(self, model: keras.Model, layer: str | None = AUTO, *, batch_size: int = 32):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        self.model = model
        self.batch_size = batch_size
        if len(model.inputs) != 1:
            raise ConfigError(f"model {model.name!r} has {len(model.inputs)} inputs; CAM methods need one")
        traced = trace(model)
        head_input, self._head = class_score_head(model, traced.ins, traced.outs)
        self.layer = resolve_layer(model, traced, head_input, self._head, layer)
        cam_output, self._grid = cam_tensor(traced, self.layer, tuple(int(v) for v in traced.input.shape[1:3]))
        probe_input = traced.input
        self.probe = keras.Model(probe_input, [cam_output, head_input], name=f"{model.name}_cam_probe")
        in_shape = tuple(model.inputs[0].shape[1:])
        self._input_spec = tf.TensorSpec((None, *in_shape), tf.float32)
        # autograph off: nothing here branches on a tensor, and converting the model's call tree
        # costs about as much as tracing it
        self._compiled = tf.function(
            self._compute,
            input_signature=[self._input_spec, tf.TensorSpec((None,), tf.int32)],
            reduce_retracing=True,
            autograph=False,
        )
        self.last_targets_: np.ndarray | None = None
        self.last_probabilities_: np.ndarray | None = None

    # --- what a method overrides -------------------------------------------------------------

    def cam_weights(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        """Channel weights ``[B, C]`` from activations and gradients ``[B, h, w, C]``."""
        raise NotImplementedError

    def cam_image(self, activations: tf.Tensor, gradients: tf.Tensor | None) -> tf.Tensor:
        """The low-resolution map ``[B, h, w]`` before ReLU (default: weighted channel sum)."""
        weights = self.cam_weights(activations, gradients)
        return tf.einsum("bhwc,bc->bhw", activations, weights)

    # --- shared work -------------------------------------------------------------------------

    def forward(self, x: tf.Tensor, *, cast: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
        """Activations of the CAM layer and class logits (float32) for a batch.

        ``cast=False`` returns the layer's own tensor: in the model's compute dtype (bfloat16 /
        float16 under mixed precision) and, for a token sequence, not yet laid out as its grid —
        the tensor a gradient must be taken against, since a cast or reshaped copy is not on the
        path to the logits (:meth:`as_map` lays it out).
        """
        acts, head_in = self.probe(x, training=False)
        logits = tf.cast(self._head(head_in), tf.float32)
        return (self.as_map(tf.cast(acts, tf.float32)) if cast else acts), logits

    def as_map(self, tensor: tf.Tensor) -> tf.Tensor:
        """Activations or gradients of the CAM layer as a ``[B, h, w, C]`` map."""
        return as_map(tensor, self._grid)

    @staticmethod
    def resolve_targets(logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """Targets with -1 replaced by the predicted class."""
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return tf.where(targets < 0, predicted, targets)

    def finish(self, low: tf.Tensor, size) -> tf.Tensor:
        """ReLU, bilinear resize to ``size`` and per-map min-max normalisation."""
        return normalize_maps(resize_maps(tf.nn.relu(low), size))

    def _with_gradients(self, x: tf.Tensor, targets: tf.Tensor):
        """``(acts, logits, targets, grads)``: grads = d (logit of the target) / d acts.

        In a graph (the compiled CAM) the gradient is symbolic: ``tf.gradients`` builds only the
        ops between the CAM layer and the class score (the head: a few layers). A
        ``GradientTape`` builds the backward pass of every recorded layer, those below the CAM
        layer too (pruned again only when the graph first runs): on a ResNet50 that doubled the
        ops traced and added about 1 s to the start of ``breastcam explain``. Run eagerly
        (``tf.config.run_functions_eagerly``) the tape is used.
        """
        if not tf.executing_eagerly():
            acts, logits, targets, score = self._class_score(x, targets)
            return acts, logits, targets, tf.gradients(score, acts)[0]
        with tf.GradientTape() as tape:
            acts, logits, targets, score = self._class_score(x, targets)
        return acts, logits, targets, tape.gradient(score, acts)

    def _class_score(self, x: tf.Tensor, targets: tf.Tensor):
        """``(acts, logits, targets, score)``: the layer's own tensor, targets resolved, and the
        logit of each image's target."""
        acts, logits = self.forward(x, cast=False)
        targets = self.resolve_targets(logits, targets)
        return acts, logits, targets, tf.gather(logits, targets, axis=1, batch_dims=1)

    def _compute(self, x: tf.Tensor, targets: tf.Tensor):
        if self.uses_gradients:
            acts, logits, targets, grads = self._with_gradients(x, targets)
            grads = self.as_map(tf.cast(grads, tf.float32))
            acts = self.as_map(tf.cast(acts, tf.float32))
        else:
            acts, logits = self.forward(x)
            targets = self.resolve_targets(logits, targets)
            grads = None
        low = self.cam_image(acts, grads)
        maps = self.finish(low, tf.shape(x)[1:3])
        return maps, targets, tf.nn.softmax(logits, axis=-1)

    def _maps(self, x: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Maps, resolved targets and probabilities for one chunk (at most ``batch_size``)."""
        maps, t, probs = self._compiled(tf.constant(x), tf.constant(targets))
        return maps.numpy(), t.numpy(), probs.numpy()

    def __call__(self, images, targets=None) -> np.ndarray:
        x = to_batch(images)
        t = to_targets(targets, len(x), int(self.model.outputs[0].shape[-1]))
        out_maps, out_t, out_p = [], [], []
        for start in range(0, len(x), self.batch_size):
            stop = start + self.batch_size
            maps, tt, probs = self._maps(x[start:stop], t[start:stop])
            out_maps.append(maps)
            out_t.append(tt)
            out_p.append(probs)
        self.last_targets_ = np.concatenate(out_t) if out_t else np.zeros((0,), np.int32)
        self.last_probabilities_ = np.concatenate(out_p) if out_p else None
        if not out_maps:
            return np.zeros((0, *x.shape[1:3]), np.float32)
        return np.concatenate(out_maps).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model.name!r}, layer={self.layer!r})"
