"""Baselines straight from ``keras.applications``: DenseNet121, VGG16, VGG19, MobileNetV2, EfficientNet-B7.

Each backbone is built on its own input and its layers become the model's layers (one flat
graph), followed by the shared head (``breastcam.models.heads``). Preprocessing is what the
application's ``preprocess_input`` expects (see ``breastcam.data.preprocess``).

Paper A compares DenseNet121 and VGG16 (paper 000 Table 7, paper 001 Table X); paper C compares
VGG16, VGG19, MobileNetV2 and EfficientNet-B7 (paper 004, no parameter counts printed).
"""

from __future__ import annotations

import keras

from breastcam.errors import ConfigError
from breastcam.models.heads import classification_head
from breastcam.models.registry import register
from breastcam.models.weights import apply_weights, backbone_weights, file_weights, load_application

_VGG_TOP_INPUT = (224, 224, 3)  # the only size at which Keras' fc1/fc2 ImageNet weights fit


def _application_model(app_fn, name, num_classes, input_shape, weights, *, dropout=0.0, **app_kwargs):
    app = load_application(app_fn, input_shape=input_shape, weights=backbone_weights(weights), **app_kwargs)
    outputs = classification_head(app.output, num_classes, dropout=dropout)
    return apply_weights(keras.Model(app.input, outputs, name=name), file_weights(weights))


@register(
    "densenet121",
    cam_layer="relu",
    input_shape=(224, 224, 3),
    preprocessing="torch",
    paper="A",
    published_params={2: 9_028_970, 3: 9_029_483, 4: 9_029_996},
    source="paper 000 Table 7 (2 classes); paper 001 Table X (Mini-DDSM 3, BACH 4 classes)",
)
def build_densenet121(num_classes, input_shape, weights=None, *, dropout: float = 0.0) -> keras.Model:
    """DenseNet121 + GAP -> logits. The published counts grow by 513 per class (a 512-wide
    layer before the classifier) but fit no standard DenseNet121 head; shown as printed."""
    return _application_model(keras.applications.DenseNet121, "densenet121", num_classes, input_shape, weights, dropout=dropout)


def _vgg(app_fn, name, num_classes, input_shape, weights, *, head, dropout):
    if head not in ("fc", "avg"):
        raise ConfigError(f"head must be 'fc' (Flatten -> fc1 -> fc2, the original VGG) or 'avg', got {head!r}")
    if head == "avg":
        return _application_model(app_fn, name, num_classes, input_shape, weights, dropout=dropout)

    backbone_weights(weights)  # a missing file fails before the build
    app = load_application(app_fn, input_shape=input_shape, weights=None)
    outputs = classification_head(
        app.output,
        num_classes,
        pooling="flatten",
        hidden_units=(4096, 4096),
        hidden_names=("fc1", "fc2"),  # Keras' names: ImageNet fc weights copy by name
        dropout=dropout,
    )
    model = keras.Model(app.input, outputs, name=name)
    if weights == "imagenet":
        # At 224 px the with-top file gives fc1/fc2 too; elsewhere fc1's shape differs and only
        # the convolutions (and fc2) can come from ImageNet.
        include_top = tuple(input_shape) == _VGG_TOP_INPUT
        shape = _VGG_TOP_INPUT if include_top else input_shape
        source = lambda: load_application(app_fn, input_shape=shape, weights="imagenet", include_top=include_top)  # noqa: E731
        return apply_weights(model, weights, imagenet_source=source)
    return apply_weights(model, weights)


@register(
    "vgg16",
    cam_layer="block5_conv3",
    input_shape=(224, 224, 3),
    preprocessing="caffe",
    paper="A,C",
    published_params={2: 134_268_738, 3: 134_272_835, 4: 134_276_934},
    source="paper 000 Table 7 (2 classes); paper 001 Table X (Mini-DDSM 3, BACH 4 classes)",
)
def build_vgg16(num_classes, input_shape, weights=None, *, head: str = "fc", dropout: float = 0.0) -> keras.Model:
    """VGG16 with its original head (Flatten -> fc1 4096 -> fc2 4096 -> logits): 134,268,738
    parameters for 2 classes at 224 px, exactly paper A's figure. ``head="avg"``: GAP -> logits."""
    return _vgg(keras.applications.VGG16, "vgg16", num_classes, input_shape, weights, head=head, dropout=dropout)


@register("vgg19", cam_layer="block5_conv4", input_shape=(224, 224, 3), preprocessing="caffe", paper="C", source="paper 004 (no count printed)")
def build_vgg19(num_classes, input_shape, weights=None, *, head: str = "fc", dropout: float = 0.0) -> keras.Model:
    """VGG19 with its original head (as ``vgg16``); ``head="avg"`` for GAP -> logits."""
    return _vgg(keras.applications.VGG19, "vgg19", num_classes, input_shape, weights, head=head, dropout=dropout)


@register("mobilenetv2", cam_layer="out_relu", input_shape=(224, 224, 3), preprocessing="minus_one_one", paper="C", source="paper 004 (no count printed)")
def build_mobilenetv2(num_classes, input_shape, weights=None, *, alpha: float = 1.0, dropout: float = 0.0) -> keras.Model:
    """MobileNetV2 (width ``alpha``) + GAP -> logits. ImageNet weights exist for input sizes
    96/128/160/192/224; Keras warns and loads the 224 weights for other sizes."""
    return _application_model(keras.applications.MobileNetV2, "mobilenetv2", num_classes, input_shape, weights, dropout=dropout, alpha=alpha)


_EFFICIENTNETS = {f"b{i}": getattr(keras.applications, f"EfficientNetB{i}") for i in range(8)}


# small: B0's depth and width (the same MBConv blocks, 237 layers instead of 813) - a ninth of the
# build, save and export time of B7 in the every-model test; tests/models/test_models_zoo.py builds B7.
@register("efficientnetb7", cam_layer="top_activation", input_shape=(224, 224, 3), preprocessing="none", paper="C",
          source="paper 004 (no count printed)", small={"scaling": "b0"})
def build_efficientnetb7(num_classes, input_shape, weights=None, *, dropout: float = 0.0, scaling: str = "b7") -> keras.Model:
    """EfficientNet-B7 + GAP -> logits, at 224 px by default (its native size is 600 px; the
    papers' protocols resize to 224 or 112). The model rescales pixels itself: feed [0, 255].
    ``scaling`` picks another member of the family (``"b0"``-``"b6"``: fewer, narrower blocks)."""
    if scaling not in _EFFICIENTNETS:
        raise ConfigError(f"scaling={scaling!r}; choose one of {', '.join(_EFFICIENTNETS)}")
    return _application_model(_EFFICIENTNETS[scaling], "efficientnetb7", num_classes, input_shape, weights, dropout=dropout)
