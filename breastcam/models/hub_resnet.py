"""ImageNet weights for ERNet-18 from keras-hub's ``resnet_18_imagenet`` (a port of timm's).

Keras ships ImageNet ResNets with bottleneck blocks only (50/101/152); keras-hub ships ResNet-18
(basic blocks, 11.19 M parameters). Its layers are named ``stack{s}_block{b}_{k}_{conv|bn}``
(0-based, no conv biases); ERNet keeps Keras' application names ``conv{s+2}_block{b+1}_{k}_...``
(with conv biases), so the weights are copied by that renaming, biases set to zero. ERNet's
first block has a 1x1 projection where ResNet-18 has an identity shortcut: it is set to the
identity (kernel = I, BN a no-op). The ER normalisations and weights keep their initialisation,
so the ER terms are what differs from ResNet-18 at the start of training.

The preset is loaded the keras-hub way (``ResNetBackbone.from_preset``): a preset name (Kaggle
download, cached) or a local preset folder (``backbone.save_to_preset(folder)``), which is how
it works offline.
"""

from __future__ import annotations

import os
import re

import keras
import numpy as np

from breastcam.errors import ModelFileError

PRESETS = {18: "resnet_18_imagenet"}
_HUB_NAME = re.compile(r"^stack(\d+)_block(\d+)_(\d+)_(conv|bn)$")


def is_preset_folder(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and os.path.isdir(weights) and \
        os.path.isfile(os.path.join(weights, "config.json"))


def load_hub_resnet(preset: str | os.PathLike) -> keras.Model:
    """keras-hub's ResNet backbone of ``preset`` (a name or a local preset folder)."""
    import keras_hub

    from breastcam.models.weights import DOWNLOAD_TIMEOUT_S, WeightsUnavailableError, _socket_timeout

    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return keras_hub.models.ResNetBackbone.from_preset(str(preset))
    except Exception as err:  # noqa: BLE001 - keras-hub raises many kinds when offline
        raise WeightsUnavailableError(f"keras-hub preset {str(preset)!r}", err) from err


def ernet_name(hub_name: str) -> str | None:
    """``stack0_block1_2_conv`` -> ``conv2_block2_2_conv``; ``conv1_*`` keep their names."""
    if hub_name.startswith("conv1_"):
        return hub_name
    m = _HUB_NAME.match(hub_name)
    if m is None:
        return None
    stack, block, k, kind = m.groups()
    return f"conv{int(stack) + 2}_block{int(block) + 1}_{k}_{kind}"


def copy_hub_resnet(src: keras.Model, dst: keras.Model) -> list[str]:
    """Copy ``src``'s conv / BN weights into the ERNet ``dst``; returns the layers set."""
    layers = {layer.name: layer for layer in dst.layers}
    done = []
    for layer in src.layers:
        target = layers.get(ernet_name(layer.name) or "")
        if target is None or not layer.weights:
            continue
        values = layer.get_weights()
        if isinstance(target, keras.layers.Conv2D) and target.use_bias and len(values) == 1:
            values = [values[0], np.zeros(target.filters, values[0].dtype)]
        if [tuple(v.shape) for v in values] != [tuple(w.shape) for w in target.weights]:
            raise ModelFileError(
                f"keras-hub layer {layer.name} does not fit ERNet layer {target.name}: shapes "
                f"{[v.shape for v in values]} vs {[tuple(w.shape) for w in target.weights]}"
            )
        target.set_weights(values)
        done.append(target.name)
    if not done:
        raise ModelFileError(f"no keras-hub ResNet layer of {src.name!r} matches ERNet {dst.name!r}")
    for name, layer in layers.items():  # projections ResNet-18 does not have: identity
        if name.endswith("_0_conv") and name not in done:
            kernel, bias = layer.get_weights()
            if kernel.shape[2] == kernel.shape[3] and kernel.shape[:2] == (1, 1):
                layer.set_weights([np.eye(kernel.shape[2], dtype=kernel.dtype)[None, None], np.zeros_like(bias)])
                bn = layers[name[:-len("conv")] + "bn"]
                gamma, beta, _, _ = bn.get_weights()
                bn.set_weights([np.ones_like(gamma), np.zeros_like(beta), np.zeros_like(gamma),
                                np.full_like(gamma, 1.0 - bn.epsilon)])
                done += [name, bn.name]
    return done
