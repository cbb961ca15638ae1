"""VGG16Inception / VGGIN-Net (Saini & Susan 2022), a baseline of paper A.

**Reading of the source.** Saini & Susan, "VGGIN-Net: Deep transfer network for imbalanced
breast cancer dataset", IEEE/ACM TCBB 20(1):752-762, 2022. Their abstract: "formed by freezing
and concatenating all the layers till block4_pool layer of VGG16 pre-trained model (at the
lower level) with the layers of a randomly initialized naive Inception block module (at the
higher level). Further, we have added the batch normalization, flatten, dropout and dense
layers". So this builder takes:

1. VGG16 ``block1_conv1`` ... ``block4_pool`` (ImageNet; ``vgg_blocks=5`` keeps block 5 too);
2. a *naive* Inception module on it (Szegedy et al. 2015, Fig. 2a): parallel 1x1, 3x3 and 5x5
   ReLU convolutions and a 3x3/1 max-pool, concatenated (``inception_concat``). The filter
   counts are not in the abstract; the defaults are GoogLeNet's inception-3a output widths
   (64, 128, 32). ``pool_proj=None`` keeps the naive pool branch (the 512 pooled channels pass
   through); an int adds a 1x1 projection, as in GoogLeNet's reduced module;
3. BatchNormalization (``inception_out``, the CAM layer), then the head. Saini & Susan flatten;
   at 224 px that is 14*14*736 = 144,256 features, so by default this builder pools globally
   (``pooling="avg"``; ``pooling="flatten"`` is their variant), then
4. ``Dense(4096, relu, name="fc")`` -> Dropout -> logits -> softmax. Paper A's counts for this
   baseline grow by 4,097 per class (000 Table 7: 38,139,938 for 2 classes; 001 Table X:
   38,144,035 / 38,148,134 for 3 / 4), i.e. its classifier reads 4,096 features: ``fc``
   reproduces that. No reading of filter counts with a plain head reproduces the constant part
   (a search over naive/projected modules on block4/block5 found no natural fit), so the
   2-class total differs from the published one; the size table shows both.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from breastcam.errors import ConfigError
from breastcam.models.heads import classification_head
from breastcam.models.registry import register
from breastcam.models.weights import apply_weights, backbone_weights, file_weights, load_application

_VGG_LAST_POOL = {4: "block4_pool", 5: "block5_pool"}


def naive_inception(x, filters: Sequence[int] = (64, 128, 32), *, pool_proj: int | None = None, name: str = "inception"):
    """Parallel 1x1 / 3x3 / 5x5 convolutions and a 3x3 max-pool (stride 1), concatenated."""
    if len(filters) != 3 or any(int(f) < 1 for f in filters):
        raise ConfigError(f"filters must be three positive ints (1x1, 3x3, 5x5), got {filters!r}")
    f1, f3, f5 = (int(f) for f in filters)
    b1 = layers.Conv2D(f1, 1, padding="same", activation="relu", name=f"{name}_1x1")(x)
    b3 = layers.Conv2D(f3, 3, padding="same", activation="relu", name=f"{name}_3x3")(x)
    b5 = layers.Conv2D(f5, 5, padding="same", activation="relu", name=f"{name}_5x5")(x)
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    if pool_proj is not None:
        bp = layers.Conv2D(int(pool_proj), 1, padding="same", activation="relu", name=f"{name}_pool_proj")(bp)
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([b1, b3, b5, bp])


@register(
    "vgg16_inception",
    cam_layer="inception_out",
    input_shape=(224, 224, 3),
    preprocessing="caffe",
    paper="A",
    published_params={2: 38_139_938, 3: 38_144_035, 4: 38_148_134},
    source="paper 000 Table 7 (2 classes); paper 001 Table X (Mini-DDSM 3, BACH 4 classes)",
)
def build_vgg16_inception(
    num_classes,
    input_shape,
    weights=None,
    *,
    vgg_blocks: int = 4,
    filters: Sequence[int] = (64, 128, 32),
    pool_proj: int | None = None,
    pooling: str = "avg",
    fc_units: int = 4096,
    dropout: float = 0.25,
    freeze_vgg: bool = False,
) -> keras.Model:
    """VGGIN-Net: VGG16 blocks 1-``vgg_blocks`` -> naive Inception -> BN -> pool -> fc -> logits.

    ``freeze_vgg=True`` freezes the VGG layers as Saini & Susan do before their block-wise fine
    tuning; paper A trains all layers (default). ``fc_units=0`` drops the ``fc`` layer.
    """
    if vgg_blocks not in _VGG_LAST_POOL:
        raise ConfigError(f"vgg_blocks must be 4 or 5, got {vgg_blocks!r}")
    if pooling not in ("avg", "flatten"):
        raise ConfigError(f"pooling must be 'avg' or 'flatten', got {pooling!r}")
    app = load_application(keras.applications.VGG16, input_shape=input_shape, weights=backbone_weights(weights))

    # === Functional Model ===
    x = app.get_layer(_VGG_LAST_POOL[vgg_blocks]).output
    x = naive_inception(x, filters, pool_proj=pool_proj, name="inception")
    x = layers.BatchNormalization(name="inception_out")(x)
    outputs = classification_head(
        x,
        num_classes,
        pooling=pooling,
        hidden_units=(fc_units,) if fc_units else (),
        hidden_names=("fc",) if fc_units else None,
        dropout=dropout,
    )
    model = keras.Model(app.input, outputs, name="vgg16_inception")
    if freeze_vgg:
        for layer in model.layers:
            if layer.name.startswith("block"):
                layer.trainable = False
    return apply_weights(model, file_weights(weights))
