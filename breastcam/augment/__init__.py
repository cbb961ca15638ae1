"""The papers' augmentation recipes by name (``get_recipe``) and paper C's offline expansion.

``get_recipe("dala" | "ernet", seed=...)`` gives a callable on float32 batches in [0, 255]
(training split only); ``modres`` is offline: ``expand_modres(df, root, out_dir)``.
"""

from breastcam.augment.modres import expand_modres
from breastcam.augment.recipes import AUGMENT_ON, RECIPES, Recipe, get_recipe, get_recipe_layers

__all__ = ["AUGMENT_ON", "RECIPES", "Recipe", "expand_modres", "get_recipe", "get_recipe_layers"]
