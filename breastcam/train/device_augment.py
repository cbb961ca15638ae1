"""Online augmentation on the accelerator: ``data.augment_on: device``.

With ``augment_on: host`` (the default) the recipe runs in the ``tf.data`` map, on the CPU,
which on a machine with a fast accelerator and few cores is what limits an augmented epoch. With
``device``, the pipeline yields raw uint8 batches (four times less to copy to the device) and
:class:`DeviceAugmented` (a wrapper used for ``fit`` only) casts them, applies the recipe's Keras
layers (training steps only), clips to [0, 255], preprocesses, and calls the plain model. The
run saves the plain model: :meth:`DeviceAugmented.save` writes the inner model, so the best checkpoint
holds no augmentation layers and loads like any other run's.

The layers come from :func:`breastcam.augment.get_recipe_layers`, the function the host
augmenter is built from, so both modes apply the same operations with the same parameters. The
random draws differ between modes (per-epoch seeding is the same rule, the layers' random state
advances per batch in both), so a run is reproducible within a mode, not across modes.
``EpochSeeder`` reseeds the layers' seed generators from ``(seed, epoch)`` with the model's own,
so a resumed run replays the same augmentation.

XLA: Keras' ``RandomRotation`` (and ``RandomTranslation``/``RandomZoom``) set
``supports_jit = False``, and Keras turns ``jit_compile`` off for a model holding such a layer
(TensorFlow's ``ImageProjectiveTransformV3`` has no XLA kernel). So ``train.jit_compile: true``
with a rotating recipe on the device trains without XLA; the run warns and ``run_info.json``
records ``jit_compile: false`` (as it does under ``train.deterministic: true``, which disables
XLA too). Keep ``augment_on: host`` where XLA matters more than the augmentation's cost.
"""

from __future__ import annotations

import keras

from breastcam.augment import get_recipe_layers
from breastcam.data.preprocess import get_preprocessor


class DeviceAugmented(keras.Model):
    """``fit``-time wrapper: uint8 (or float) batches in [0, 255] -> augment -> preprocess -> model.

    Never saved as itself: :meth:`save` saves the inner model (what checkpoints write).
    """

    def __init__(self, model: keras.Model, augmenters: list, preprocessing: str, **kwargs):
        super().__init__(name=kwargs.pop("name", f"{model.name}_device_augmented"), **kwargs)
        self.inner = model
        self.augmenters = list(augmenters)
        self.preprocessing = preprocessing
        self._preprocess = get_preprocessor(preprocessing)

    def build(self, input_shape):
        for layer in self.augmenters:
            layer.build((*input_shape[:-1], 3))
        self.built = True  # the inner model is built already

    def augment(self, images):
        """The recipe on a float32 batch in [0, 255] (training mode), clipped to [0, 255]."""
        out = images
        for layer in self.augmenters:
            out = layer(out, training=True)
        return keras.ops.clip(out, 0.0, 255.0) if self.augmenters else out

    def call(self, images, training=False):
        x = keras.ops.cast(images, "float32")
        if training:
            x = self.augment(x)
        return self.inner(self._preprocess(x), training=training)

    def save(self, filepath, *args, **kwargs):
        """Save the plain model (no augmentation, no preprocessing): what a run keeps."""
        return self.inner.save(filepath, *args, **kwargs)


def device_augmented(model: keras.Model, recipe: str | None, *, seed: int,
                     preprocessing: str) -> DeviceAugmented:
    """Wrap ``model`` for a run with ``data.augment_on: device`` and ``data.augmentation: recipe``."""
    wrapper = DeviceAugmented(model, get_recipe_layers(recipe, seed=seed), preprocessing)
    wrapper.build(model.input_shape)  # before fit: BackupAndRestore requires a built model
    return wrapper
