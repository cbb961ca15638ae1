"""Exact save/load of keras-hub's DINOv2 position embeddings (a workaround, applied on import).

keras-hub (0.32) keeps two tables in ``DINOV2Embedding``: ``position_embeddings`` at the
pretraining size (518 px) and the trainable ``interpolated_position_embeddings`` actually used at
the model's input size. Its ``save_own_variables`` writes both, but its ``load_own_variables``
ignores the stored interpolated table and re-interpolates it (bicubic) from a table that
``save_own_variables`` had back-interpolated from the trained one: a round trip through two
resamplings. A trained DINOv2 therefore reloads as another model (probabilities off by up to
5e-3 after one step), which breaks ``load_model`` -> export -> predict.

The fix loads the stored interpolated table as it was saved whenever its shape matches the
layer's (same input size), and otherwise (a preset loaded at another input size) keeps
keras-hub's re-interpolation; saving no longer rewrites ``position_embeddings`` (it is not
trained). Every file keras-hub ever wrote holds the raw interpolated table, so old files load
exactly too. Applied once, to the class, when breastcam's transformer family is imported.
"""

from __future__ import annotations

import keras
from keras_hub.src.models.dinov2.dinov2_layers import DINOV2Embedding

_PATCHED = "_breastcam_exact_save"


def _save_own_variables(self, store) -> None:
    keras.layers.Layer.save_own_variables(self, store)


def _load_own_variables(self, store) -> None:
    _load_own_variables.original(self, store)  # every table, interpolated one re-derived
    variables = self._trainable_variables + self._non_trainable_variables
    index = next(i for i, v in enumerate(variables) if v is self.interpolated_position_embeddings)
    saved = store[f"{index}"]
    if tuple(saved.shape) == tuple(self.interpolated_position_embeddings.shape):
        self.interpolated_position_embeddings.assign(saved)


def apply() -> None:
    """Patch ``DINOV2Embedding`` once (idempotent)."""
    if getattr(DINOV2Embedding, _PATCHED, False):
        return
    _load_own_variables.original = DINOV2Embedding.load_own_variables
    DINOV2Embedding.save_own_variables = _save_own_variables
    DINOV2Embedding.load_own_variables = _load_own_variables
    setattr(DINOV2Embedding, _PATCHED, True)
