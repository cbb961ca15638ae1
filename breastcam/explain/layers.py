"""Which layer a CAM reads, on any Keras model: ``--layer auto`` and the tensors behind it.

A CAM needs two tensors on ONE connected graph: the activations of a spatial layer and the input
of the class-score head. :func:`trace` gives every layer's input and output on such a graph:

- a functional model with no nested model: its own tensors;
- a ``Sequential`` model, or any model with nested models inside (a keras-hub backbone, a
  ``keras.applications`` base): the layers are called afresh on one new input
  (``keras.models.clone_model`` with every layer reused, so the weights are the model's), nested
  models replayed layer by layer, their layers named ``outer/inner`` (``--layer
  backbone/conv5_block3_out``). A loaded ``Sequential`` has called each layer twice, and a
  nested model's own ``layer.output`` belongs to its own graph: neither is connected to the
  outer class score.

:func:`resolve_layer` takes the registry's CAM layer for breastcam's own models; for any other,
:func:`auto_layer` picks the last layer whose output is spatial — a ``(B, h, w, C)`` map with
``h x w > 1`` (a pooling layer's input is preferred to its output: the same evidence, finer), or a
``(B, tokens, C)`` sequence that lays out as the input's patch grid once its class / register
tokens are dropped (ViT, DINOv2) — and that the class score depends on: one backward pass on a
random image, the gradient reaching the layer must not be zero.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import keras
import tensorflow as tf

from breastcam.errors import ConfigError

AUTO = "auto"
MAX_PREFIX_TOKENS = 16  # class + register tokens a token sequence may start with
# not CAM layers: the input itself, and pooling (its input is the same evidence, finer)
_SKIPPED = (keras.layers.InputLayer, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_CHECKED = 12  # candidates whose gradient the auto search computes in one pass


@dataclasses.dataclass
class Traced:
    """Every layer's input and output on one connected graph from ``input``."""

    input: keras.KerasTensor
    ins: dict  # qualified layer name -> its (first) input tensor
    outs: dict  # qualified layer name -> its output tensor
    order: list  # qualified names in call order (a topological order)
    layers: dict  # qualified name -> the layer object
    replayed: bool  # True: the tensors are a fresh call, not the model's own

    def output(self, name: str) -> keras.KerasTensor:
        if name not in self.outs:
            nested = [n for n in self.order if "/" in n][:3]
            hint = f" (nested layers are named outer/inner, e.g. {nested[0]!r})" if nested else ""
            raise ConfigError(f"the model has no layer named {name!r}{hint}")
        return self.outs[name]


def _nested(model: keras.Model) -> bool:
    return any(isinstance(layer, keras.Model) for layer in model.layers)


def trace(model: keras.Model) -> Traced:
    """The model's layers' tensors on one connected graph (see the module docstring)."""
    if not isinstance(model, keras.Sequential) and not _nested(model):
        ins, outs, order, layers = {}, {}, [], {}
        for layer in model.layers:
            try:
                ins[layer.name], outs[layer.name] = layer.input, layer.output
            except (AttributeError, ValueError):  # a shared layer has no single input / output
                continue
            order.append(layer.name)
            layers[layer.name] = layer
        return Traced(model.inputs[0], ins, outs, order, layers, replayed=False)
    first = model.inputs[0]
    inp = keras.Input(shape=tuple(first.shape[1:]), dtype=first.dtype)
    traced = Traced(inp, {}, {}, [], {}, replayed=True)
    _replay(model, inp, "", traced)
    return traced


def _replay(model: keras.Model, inputs, prefix: str, traced: Traced):
    if isinstance(model, keras.Sequential):
        x = inputs
        for layer in model.layers:
            x = _call(layer, prefix, traced, x)
        return x

    def call_function(layer, *args, **kwargs):
        return _call(layer, prefix, traced, *args, **kwargs)

    with warnings.catch_warnings():  # keras-hub backbones: dict-input names, masks Swin ignores
        warnings.simplefilter("ignore", UserWarning)
        clone = keras.models.clone_model(model, input_tensors=inputs, clone_function=lambda layer: layer,
                                         call_function=call_function)
    return clone.outputs[0] if len(clone.outputs) == 1 else clone.outputs


def _call(layer, prefix: str, traced: Traced, *args, **kwargs):
    name = prefix + layer.name
    traced.ins[name] = args[0] if args else next(iter(kwargs.values()), None)
    out = (_replay(layer, args[0], name + "/", traced) if isinstance(layer, keras.Model)
           else layer(*args, **kwargs))
    traced.outs[name] = out
    traced.order.append(name)
    traced.layers[name] = layer
    return out


def token_grid(tokens: int, input_hw: tuple[int, int]) -> tuple[int, int, int] | None:
    """``(h, w, prefix)``: the patch grid ``tokens`` lays out as, with the input's aspect ratio,
    after the fewest leading (class / register) tokens; None when there is no such grid."""
    big, small = int(input_hw[0]), int(input_hw[1])
    for prefix in range(0, min(MAX_PREFIX_TOKENS, tokens - 1) + 1):
        n = tokens - prefix
        h = round(math.sqrt(n * big / small))
        if h >= 1 and n % h == 0:
            w = n // h
            if h * small == w * big and h * w > 1:
                return h, w, prefix
    return None


def spatial(tensor, input_hw: tuple[int, int]) -> str | None:
    """``"map"`` for a ``(B, h, w, C)`` output with h x w > 1, ``"tokens"`` for a token
    sequence that lays out as a patch grid, else None."""
    shape = getattr(tensor, "shape", None)
    if shape is None or not isinstance(shape, (tuple, list, tf.TensorShape)):
        return None
    shape = tuple(shape)
    if len(shape) == 4 and shape[1] and shape[2] and shape[1] * shape[2] > 1:
        return "map"
    if len(shape) == 3 and shape[1] and token_grid(int(shape[1]), input_hw) is not None:
        return "tokens"
    return None


def cam_tensor(traced: Traced, name: str, input_hw: tuple[int, int]
               ) -> tuple[keras.KerasTensor, tuple[int, int, int] | None]:
    """``(tensor, grid)``: the activations of layer ``name`` and, for a token sequence, the
    ``(h, w, prefix)`` it lays out as (None for a ``(B, h, w, C)`` map). The tensor itself is
    returned, not a reshaped copy: gradients must be taken against a tensor on the path to the
    class score; :func:`as_map` lays activations and gradients out afterwards."""
    out = traced.output(name)
    kind = spatial(out, input_hw)
    if kind == "tokens":
        return out, token_grid(int(out.shape[1]), input_hw)
    if len(getattr(out, "shape", ())) != 4:  # a named 1 x 1 map is allowed; the search prefers more
        raise ConfigError(
            f"CAM layer {name!r} has output shape {tuple(getattr(out, 'shape', ()))}; CAM methods need "
            "a (batch, height, width, channels) map or a (batch, tokens, channels) patch sequence "
            "(use --layer auto to search)")
    return out, None


def as_map(tensor: tf.Tensor, grid: tuple[int, int, int] | None) -> tf.Tensor:
    """``(B, tokens, C)`` -> ``(B, h, w, C)`` (the ``prefix`` tokens dropped); maps unchanged."""
    if grid is None:
        return tensor
    h, w, prefix = grid
    return tf.reshape(tensor[:, prefix:, :], (-1, h, w, tensor.shape[-1]))


def auto_layer(model: keras.Model, traced: Traced, head_input, head) -> str:
    """The last spatial layer the class score depends on (see the module docstring)."""
    input_hw = tuple(int(v) for v in traced.input.shape[1:3])
    candidates = []
    for name in reversed(traced.order):
        out = traced.outs[name]
        if out is head_input or isinstance(traced.layers[name], keras.Model):
            continue  # a nested model's output is its last inner layer's: that one is the candidate
        if spatial(out, input_hw) is None or isinstance(traced.layers[name], _SKIPPED):
            continue
        candidates.append(name)
        if len(candidates) == _CHECKED:
            break
    if not candidates:
        searched = len(traced.order)
        raise ConfigError(
            f"model {model.name!r} has no layer with a spatial output for a CAM: searched {searched} "
            "layer(s) (nested models included) for a (batch, height, width, channels) map with more "
            "than one position, or a (batch, tokens, channels) sequence that lays out as the input's "
            "patch grid; pass --layer NAME to choose one")
    found = [cam_tensor(traced, n, input_hw) for n in candidates]
    tensors = [tensor for tensor, _ in found]
    probe = keras.Model(traced.input, [*tensors, head_input])
    shape = (1, *traced.input.shape[1:])
    x = tf.random.stateless_uniform(shape, seed=(0, 0), minval=-1.0, maxval=1.0)
    with tf.GradientTape() as tape:
        *acts, head_in = probe(tf.cast(x, traced.input.dtype), training=False)
        logits = head(head_in)
        score = tf.reduce_max(tf.cast(logits, tf.float32), axis=-1)
    grads = tape.gradient(score, acts)
    for name, (_, grid), grad in zip(candidates, found, grads):
        # the positions a map is made of must matter: a token layer's class token does not count
        if grad is not None and float(tf.reduce_max(tf.abs(as_map(tf.cast(grad, tf.float32), grid)))) > 0.0:
            return name
    raise ConfigError(
        f"model {model.name!r}: the class score does not depend on any of its last spatial layers "
        f"({', '.join(candidates)}): their gradient is zero or missing; pass --layer NAME")


def resolve_layer(model: keras.Model, traced: Traced, head_input, head, layer: str | None) -> str:
    """``layer``, or for ``auto`` / None: the layer breastcam's model registry names for a
    registered model (the search finds the same one for all of them: tests/test_every_model.py),
    else :func:`auto_layer`'s search."""
    if layer not in (None, AUTO):
        return layer
    try:
        from breastcam.models import cam_layer

        registered = cam_layer(model)
    except (ValueError, KeyError, ConfigError):  # not a registered model
        registered = None
    if registered is not None and registered in traced.outs:
        return registered
    return auto_layer(model, traced, head_input, head)


def search_layer(model: keras.Model) -> str:
    """:func:`auto_layer`'s search on ``model`` alone (no registry): what ``auto`` picks for a
    model breastcam does not know."""
    from breastcam.explain.base import class_score_head

    traced = trace(model)
    head_input, head = class_score_head(model, traced.ins, traced.outs)
    return auto_layer(model, traced, head_input, head)


__all__ = ["AUTO", "Traced", "as_map", "auto_layer", "cam_tensor", "resolve_layer", "search_layer", "spatial",
           "token_grid", "trace"]
