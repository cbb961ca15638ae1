"""Per-model pixel preprocessing, by name, applied to float32 images in [0, 255].

Names are what ``breastcam.models.spec(name).preprocessing`` and run configs use. Keeping the
mapping here (not inside the models) lets the same model be trained under either paper's
protocol: paper A scales to [-1, 1]; paper C uses ResNet50's ``preprocess_input``.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from breastcam.errors import DataError

Preprocessor = Callable[[tf.Tensor], tf.Tensor]

# ImageNet channel means (RGB) used by the "caffe" mode of keras.applications (ResNet50, VGG).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def _minus_one_one(x: tf.Tensor) -> tf.Tensor:
    return x / 127.5 - 1.0


def _zero_one(x: tf.Tensor) -> tf.Tensor:
    return x / 255.0


def _caffe(x: tf.Tensor) -> tf.Tensor:
    # RGB -> BGR, then subtract the ImageNet mean: keras.applications.resnet50.preprocess_input.
    x = x[..., ::-1]
    return x - tf.constant(_CAFFE_MEAN_BGR, dtype=x.dtype)


def _torch(x: tf.Tensor) -> tf.Tensor:
    # keras.applications.densenet.preprocess_input: [0,1] then ImageNet mean/std (RGB).
    x = x / 255.0
    return (x - tf.constant(_TORCH_MEAN, dtype=x.dtype)) / tf.constant(_TORCH_STD, dtype=x.dtype)


def _identity(x: tf.Tensor) -> tf.Tensor:
    # EfficientNet and the keras-hub models rescale inside the model.
    return x


PREPROCESSORS: dict[str, Preprocessor] = {
    "minus_one_one": _minus_one_one,  # paper A; also MobileNetV2's preprocess_input ("tf" mode)
    "zero_one": _zero_one,
    "caffe": _caffe,  # ResNet50 / VGG16 / VGG19 preprocess_input (paper C)
    "torch": _torch,  # DenseNet121 preprocess_input
    "none": _identity,
}


def get_preprocessor(name: str) -> Preprocessor:
    """The preprocessing function called ``name``; a clear error for unknown names."""
    try:
        return PREPROCESSORS[name]
    except KeyError:
        raise DataError(
            f"unknown preprocessing {name!r}; choose one of {', '.join(PREPROCESSORS)}"
        ) from None
