"""breastcam: reproducible breast-cancer image classification with measured explanations.

Layers, lowest first (a layer never imports a higher one):
``data`` -> ``stain`` / ``augment`` -> ``models`` -> ``train`` -> ``evaluate`` -> ``explain``
-> ``report`` -> ``cli``.
"""

__version__ = "0.1.0"
