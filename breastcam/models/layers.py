"""Channel-attention modules as sub-graphs of core Keras layers.

Built from ``GlobalAveragePooling2D(keepdims=True)``, ``Dense``, ``LeakyReLU``/``ReLU`` and
``Multiply`` only, so the models stay plain functional graphs: every intermediate output is a
named layer (reachable for CAM methods) and ``.keras`` files reload with ``safe_mode=True``
without any custom object.
"""

from __future__ import annotations

from keras import layers

from breastcam.errors import ConfigError

GATES = ("relu", "sigmoid")


def _reduced_channels(channels: int, reduction: int) -> int:
    if reduction < 1 or channels % reduction:
        raise ConfigError(
            f"reduction must divide the channel count: {channels} channels, reduction {reduction!r}"
        )
    return channels // reduction


def dala_attention(x, *, reduction: int = 16, gate: str = "relu", negative_slope: float = 0.01, name: str = "dala_attention"):
    """Dual-activation lightweight attention (paper A, SPEC §3).

    ``s = gate(Dense_C(LeakyReLU_0.01(Dense_{C/r}(GAP(x)))))``, output ``x * s`` broadcast over
    height and width. The gate is ReLU in the paper (the "dual activation" with the LeakyReLU);
    ``gate="sigmoid"`` gives the usual SE-style gate. At C = 2048, r = 16 the module has
    2*2048*128 + 128 + 2048 = 526,464 parameters. The output layer is ``f"{name}_out"``.
    """
    if gate not in GATES:
        raise ConfigError(f"gate must be one of {GATES}, got {gate!r}")
    channels = int(x.shape[-1])
    hidden = _reduced_channels(channels, reduction)
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Dense(hidden, name=f"{name}_reduce")(s)
    s = layers.LeakyReLU(negative_slope=negative_slope, name=f"{name}_leaky_relu")(s)
    s = layers.Dense(channels, name=f"{name}_expand")(s)
    if gate == "relu":
        s = layers.ReLU(name=f"{name}_gate")(s)
    else:
        s = layers.Activation("sigmoid", name=f"{name}_gate")(s)
    return layers.Multiply(name=f"{name}_out")([x, s])


def squeeze_excite(x, *, reduction: int = 16, use_bias: bool = True, name: str = "se"):
    """Squeeze-and-excitation (Hu et al. 2018): ``x * sigmoid(W2 relu(W1 GAP(x)))``.

    ``use_bias=False`` drops the two Dense biases (some public SE-ResNet50 ports do; see
    ``breastcam.models.seresnet``). Layers are named ``f"{name}_squeeze"``, ``_reduce``,
    ``_expand``, ``_excite``.
    """
    channels = int(x.shape[-1])
    hidden = _reduced_channels(channels, reduction)
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Dense(hidden, activation="relu", use_bias=use_bias, name=f"{name}_reduce")(s)
    s = layers.Dense(channels, activation="sigmoid", use_bias=use_bias, name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_excite")([x, s])
