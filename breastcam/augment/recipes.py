"""The papers' augmentation recipes, selectable by name in a run config.

| name | paper | where it runs |
|---|---|---|
| ``none`` | — | nothing |
| ``dala`` | A, DALAResNet50 | online: random rotation + horizontal flip (Keras layers) |
| ``ernet`` | B, ERNet | online: random translation + rotation + zoom, then Augmentor centring crop, flips and crops |
| ``modres`` | C, Modified ResNet50 | offline: ``expand_modres`` writes 5 copies per training image |

Online recipes are callables on a float32 batch [B, H, W, 3] in [0, 255] returning the same
shape; ``breastcam.data.make_dataset`` applies them after batching, to the training split only
(validation and test datasets are built with ``augment=None``). They are seeded: the same name
and seed replay the same augmented batches, given the batches in the same order (the pipeline
runs the augmenting ``map`` sequentially, so batches draw their randomness in order).

``data.augment_on: device`` runs a recipe's Keras layers inside the training step instead
(:func:`get_recipe_layers`; ``breastcam.train.device_augment``): only recipes made of Keras
layers alone can (``dala``); ``ernet``'s Augmentor step is Python code on the host.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

from breastcam.errors import ConfigError, DataError

Augmenter = Callable[[tf.Tensor], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    paper: str
    online: bool
    description: str


RECIPES: dict[str, Recipe] = {
    "none": Recipe("none", "", True, "no augmentation"),
    "dala": Recipe("dala", "A", True, "random rotation + horizontal flip (Keras layers)"),
    "ernet": Recipe(
        "ernet", "B", True, "random translation + rotation + zoom, then Augmentor centring crop, flips and crops"
    ),
    "modres": Recipe(
        "modres",
        "C",
        False,
        "offline hflip/vflip/shift/shear/rotate copies of the training split (6x): expand_modres",
    ),
}


def get_recipe(
    name: str | None, *, seed: int = 0, image_size: tuple[int, int] = (224, 224), **params
) -> Augmenter | None:
    """The online augmenter called ``name``, or ``None`` for ``none`` and the offline ``modres``.

    ``params`` override the recipe's documented defaults (e.g. ``rotation_factor=0.05``).
    ``image_size`` is the size the pipeline feeds; the augmenters keep whatever size they get.
    """
    key = "none" if name is None else str(name).lower()
    if key not in RECIPES:
        raise DataError(f"unknown augmentation recipe {name!r}; choose one of {sorted(RECIPES)}")
    if len(tuple(image_size)) != 2:
        raise DataError(f"image_size must be (height, width), got {image_size!r}")
    if key in ("none", "modres"):
        if params:
            raise DataError(f"recipe {key!r} takes no online parameters, got {sorted(params)}")
        return None
    if key == "dala":
        from breastcam.augment.dala import make_dala

        return make_dala(seed=seed, **params)
    from breastcam.augment.ernet import make_ernet

    return make_ernet(seed=seed, **params)


AUGMENT_ON = ("host", "device")
"""Where online augmentation runs: ``host`` (a ``tf.data`` map, on the CPU) or ``device``
(Keras layers inside the training step, on the accelerator)."""


def get_recipe_layers(name: str | None, *, seed: int = 0, **params) -> list:
    """The Keras layers of recipe ``name`` for ``data.augment_on: device`` (in order; clip the
    output to [0, 255] after them); ``[]`` for ``none`` and the offline ``modres``.

    The layers are built by the same function the host augmenter uses, so both modes apply the
    same operations with the same parameters. ``ernet`` cannot run on the device: its Augmentor
    step (flips, crops on PIL images) is Python code, a ``ConfigError`` says so.
    """
    key = "none" if name is None else str(name).lower()
    if key not in RECIPES:
        raise DataError(f"unknown augmentation recipe {name!r}; choose one of {sorted(RECIPES)}")
    if key in ("none", "modres"):
        if params:
            raise DataError(f"recipe {key!r} takes no online parameters, got {sorted(params)}")
        return []
    if key == "dala":
        from breastcam.augment.dala import dala_layers

        return dala_layers(seed=seed, **params)
    raise ConfigError(
        f"data.augment_on=device is not available for recipe {key!r}: its Augmentor step (flips "
        "and crops on PIL images, paper B's library) runs as Python code, which cannot run "
        "inside the training step on an accelerator. Use data.augment_on: host for this recipe."
    )
