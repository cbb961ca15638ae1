"""Stain normalisation: Macenko in TensorFlow (batched, usable in tf.data) and its NumPy reference.

``Macenko().fit(reference).transform(batch)``; a fitted instance is also the ``stain=`` callable
of ``breastcam.data.make_dataset`` (one uint8 HxWx3 image in, uint8 out).
"""

from breastcam.stain.macenko import Macenko
from breastcam.stain.macenko_numpy import MacenkoNumpy

__all__ = ["Macenko", "MacenkoNumpy"]
