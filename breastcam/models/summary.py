"""The model-size table: parameters, GFLOPs, CAM layer and the papers' published counts.

GFLOPs are counted analytically, not profiled: ``2 x`` the multiply-accumulates of every
convolution (``Conv*``, ``DepthwiseConv2D``, ``SeparableConv2D``) and ``Dense``/``EinsumDense``
layer at the model's input size, recursing into nested models. That is the convention of
ResNet-50 = 7.7-8.2 GFLOPs (paper 003 Table 1 prints 7.8), it is exact for CNNs, takes
milliseconds, and needs no tracing; elementwise ops, pooling, normalisation and attention's
score/value matmuls (not layers with kernels) are not counted, so transformer figures are lower
bounds.
"""

from __future__ import annotations

import math
from typing import Iterable

import keras
import pandas as pd

from breastcam.console import progress
from breastcam.models.registry import build, names as registered_names, spec


def _num(shape) -> int:
    return int(math.prod(int(d) for d in shape if d is not None))


def _layer_macs(layer) -> int:
    kernel = getattr(layer, "kernel", None)
    if isinstance(layer, keras.layers.SeparableConv2D):
        out = layer.output.shape
        positions = _num(out[1:-1])
        return positions * (_num(layer.depthwise_kernel.shape) + _num(layer.pointwise_kernel.shape))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        positions = _num(layer.output.shape[1:-1])
        return positions * _num(layer.kernel.shape)
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)):
        if isinstance(layer, keras.layers.Conv2DTranspose) or kernel is None:
            return 0
        # output elements / output channels = positions at which the whole kernel is applied
        return _num(layer.output.shape[1:]) // int(kernel.shape[-1]) * _num(kernel.shape)
    if isinstance(layer, keras.layers.EinsumDense) and kernel is not None:
        # transformer projections (batch, tokens, ...) x kernel: the whole kernel once per token
        out = layer.output.shape
        return (int(out[1]) if len(out) > 2 else 1) * _num(kernel.shape)
    return 0


def count_flops(model: keras.Model) -> float:
    """Analytic GFLOPs (2 x MACs of conv and dense layers) of one image through ``model``."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            macs += int(count_flops(layer) * 1e9 / 2)
            continue
        try:
            macs += _layer_macs(layer)
        except (AttributeError, ValueError):
            # a layer used at several places has no single `output`; such layers are rare
            # in these models (keras-hub shares none of its kernels)
            continue
    return 2 * macs / 1e9


def _counts(model: keras.Model) -> tuple[int, int]:
    trainable = sum(_num(w.shape) for w in model.trainable_weights)
    return int(model.count_params()), int(trainable)


def size_table(
    names: Iterable[str] | None = None,
    flops: bool = True,
    input_size: int | None = None,
) -> pd.DataFrame:
    """One row per registered model (``names`` or all): sizes at its default input.

    Columns: ``model``, ``paper``, ``input``, ``cam_layer``, ``preprocessing``,
    ``params_2`` / ``trainable_2`` (2 classes), ``gflops`` (2 classes, analytic; NaN when
    ``flops=False``), ``published_classes``, ``published_params`` (the paper's figure, for the
    first class count it prints), ``params_published_classes`` (ours at that class count),
    ``difference`` (ours - published) and ``source``. ``input_size`` overrides every model's
    input height/width. Builds every model once with ``weights=None`` (big ones take seconds).
    """
    rows = []
    chosen = list(names) if names is not None else registered_names()
    for name in progress(chosen, desc="models", unit="model", min_items=2):
        s = spec(name)
        shape = s.input_shape if input_size is None else (input_size, input_size, s.input_shape[-1])
        model = build(name, 2, input_shape=shape)
        total, trainable = _counts(model)
        row = {
            "model": name,
            "paper": s.paper,
            "input": f"{shape[0]}x{shape[1]}",
            "cam_layer": s.cam_layer or "",
            "preprocessing": s.preprocessing,
            "params_2": total,
            "trainable_2": trainable,
            "gflops": round(count_flops(model), 3) if flops else float("nan"),
            "published_classes": pd.NA,
            "published_params": pd.NA,
            "params_published_classes": pd.NA,
            "difference": pd.NA,
            "source": s.source,
        }
        if s.published_params:
            classes = min(s.published_params)
            ours = total if classes == 2 else _counts(build(name, classes, input_shape=shape))[0]
            row.update(
                published_classes=classes,
                published_params=s.published_params[classes],
                params_published_classes=ours,
                difference=ours - s.published_params[classes],
            )
        rows.append(row)
        keras.backend.clear_session()
    table = pd.DataFrame(rows)
    int_columns = ["published_classes", "published_params", "params_published_classes", "difference"]
    return table.astype({c: "Int64" for c in int_columns}) if rows else table
