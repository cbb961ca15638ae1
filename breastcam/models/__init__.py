"""Model zoo: every architecture of the three papers behind one registry.

``build(name, num_classes, input_shape=None, weights=None, **options)`` returns a flat
functional ``keras.Model`` ending in ``Dense(name="logits")`` -> ``Activation("softmax",
name="probabilities")``; ``names()`` lists them, ``spec(name)`` gives the paper's input size,
preprocessing and published parameter counts, ``cam_layer(model)`` the layer CAM methods use.
``load_model(path)`` is the one way to read a ``.keras`` file (every family's layers known,
``safe_mode=True``, failures as ``ModelFileError`` naming the file).
"""

from breastcam.models.heads import classifier_logits, logits_model
from breastcam.models.loading import load_model
from breastcam.models.registry import ModelSpec, build, cam_layer, names, register, spec

__all__ = ["ModelSpec", "build", "cam_layer", "classifier_logits", "load_model", "logits_model", "names",
           "register", "spec"]
