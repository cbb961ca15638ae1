"""One registry for every architecture: ``build(name, num_classes, input_shape, weights)``.

Each model family lives in its own module and registers its builders with :func:`register`.
A builder is a plain function ``builder(num_classes, input_shape, weights, **options) ->
keras.Model`` returning a flat functional graph (the backbone's layers are the model's own
layers, so any inner output is reachable for CAM methods).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

import keras

from breastcam.errors import BreastcamError, ConfigError

Builder = Callable[..., keras.Model]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the rest of the package needs to know about a registered model."""

    name: str
    builder: Builder
    cam_layer: str | None  # layer whose output CAM methods use; None: no spatial map
    input_shape: tuple[int, int, int]  # the paper's input size
    preprocessing: str  # name understood by breastcam.data.preprocess
    paper: str = ""  # which paper trains or compares it ("A", "B", "C")
    published_params: dict[int, int] = dataclasses.field(default_factory=dict)
    # num_classes -> parameter count printed by a paper (with the source in `source`)
    source: str = ""
    # Used by `cam_layer(model)` when the model lacks `cam_layer` (an option moved or removed
    # it, e.g. DALAResNet50 with its attention module before stage 4).
    cam_layer_fallback: str | None = None
    # A small model of the same structure for quick end-to-end checks (tests, smoke runs):
    # ``input_shape`` plus builder options. Empty: the registered options at SMALL_INPUT_SHAPE.
    small: dict = dataclasses.field(default_factory=dict)

    def small_config(self) -> tuple[tuple[int, int, int], dict]:
        """``(input_shape, options)`` of :attr:`small`, for ``build(name, n, shape, **options)``."""
        options = dict(self.small)
        return tuple(options.pop("input_shape", SMALL_INPUT_SHAPE)), options


#: Input of the small models when a family declares nothing smaller (every CNN accepts it).
SMALL_INPUT_SHAPE = (64, 64, 3)
_REGISTRY: dict[str, ModelSpec] = {}
_LOADED = False


def register(
    name: str,
    *,
    cam_layer: str | None,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    preprocessing: str = "minus_one_one",
    paper: str = "",
    published_params: dict[int, int] | None = None,
    source: str = "",
    cam_layer_fallback: str | None = None,
    small: dict | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` under ``name``."""

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ConfigError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=builder,
            cam_layer=cam_layer,
            input_shape=tuple(input_shape),
            preprocessing=preprocessing,
            paper=paper,
            published_params=dict(published_params or {}),
            source=source,
            cam_layer_fallback=cam_layer_fallback,
            small=dict(small or {}),
        )
        return builder

    return wrap


class ModelFamilyImportError(BreastcamError, ImportError):
    """A model-family module failed to import, so its models (and custom layers) are missing."""


_FAMILY_ERROR: ModelFamilyImportError | None = None
_LOADING = False


def _load_families() -> None:
    """Import every family module (their ``@register`` calls fill the registry), or raise.

    Lazy so that ``import breastcam.models`` stays cheap and import cycles are impossible. The
    registry counts as loaded only once every family imported: a failure raises
    :class:`ModelFamilyImportError` naming the family and why, now and on every later call,
    instead of a silently shorter model list.
    """
    global _LOADED, _LOADING
    if _LOADED or _LOADING:  # _LOADING: a family module asked the registry while importing
        return
    if _FAMILY_ERROR is not None:
        raise _FAMILY_ERROR
    from breastcam.models.families import FAMILIES

    _LOADING = True
    try:
        _import_families(FAMILIES)
    finally:
        _LOADING = False
    _LOADED = True


def _import_families(families: dict[str, str]) -> None:
    global _FAMILY_ERROR
    for module, holds in families.items():
        try:
            importlib.import_module(f"breastcam.models.{module}")
        except Exception as err:  # noqa: BLE001 - any failure leaves the registry incomplete
            _FAMILY_ERROR = ModelFamilyImportError(
                f"model family breastcam.models.{module} ({holds}) failed to import: "
                f"{type(err).__name__}: {err}. Its models cannot be built or loaded. Way forward: "
                "install breastcam's requirements into this environment (pip install -e . from "
                "the checkout), then retry."
            )
            raise _FAMILY_ERROR from err


def names() -> list[str]:
    """All registered model names, sorted."""
    _load_families()
    return sorted(_REGISTRY)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; a clear error for an unknown name."""
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; registered models are: {', '.join(sorted(_REGISTRY))}"
        ) from None


def build(
    name: str,
    num_classes: int,
    input_shape: tuple[int, int, int] | None = None,
    weights: str | None = None,
    **options,
) -> keras.Model:
    """Build the registered model ``name`` as a functional ``keras.Model``.

    ``input_shape`` defaults to the paper's input size for that model. ``weights`` is ``None``
    (random init), ``"imagenet"`` (Keras' download and cache) or a path to a weights file.
    The returned model's ``name`` is the registry name, so :func:`cam_layer` works on models
    reloaded from ``.keras`` files too.
    """
    s = spec(name)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an int >= 2, got {num_classes!r}")
    shape = tuple(input_shape) if input_shape is not None else s.input_shape
    if len(shape) != 3 or shape[-1] != 3:
        raise ConfigError(f"input_shape must be (height, width, 3), got {input_shape!r}")
    _check_options(name, s.builder, options)
    return s.builder(num_classes=num_classes, input_shape=shape, weights=weights, **options)


def _check_options(name: str, builder, options: dict) -> None:
    """An option the builder does not take is a ConfigError naming the valid ones (model.options
    of a run config), not a TypeError from deep inside the builder."""
    import inspect

    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        target = getattr(builder, "__wrapped__", None)
        if target is None:
            return  # a builder that forwards **options: the family checks them itself
        params = inspect.signature(target).parameters
    valid = [p for p in params if p not in ("num_classes", "input_shape", "weights", "self")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"model {name!r} takes no option(s) {unknown} (model.options); its options: "
                          f"{', '.join(valid) or 'none'}. Leave those out of model.options (a config "
                          f"written for another model: add --set 'model.options={{}}' beside model.name)")


def cam_layer(model_or_name: keras.Model | str) -> str:
    """Name of the layer whose output CAM methods should use for this model.

    Given a model (not a name), options that moved the registered layer are honoured: when the
    model has no layer called ``spec.cam_layer`` the spec's ``cam_layer_fallback`` is used.
    Raises ``ValueError`` for models with no spatial feature map.
    """
    name = model_or_name if isinstance(model_or_name, str) else model_or_name.name
    s = spec(name)
    if s.cam_layer is None:
        raise ConfigError(f"model {name!r} has no spatial CAM layer")
    if isinstance(model_or_name, str) or s.cam_layer_fallback is None:
        return s.cam_layer
    layer_names = {layer.name for layer in model_or_name.layers}
    if s.cam_layer not in layer_names and s.cam_layer_fallback in layer_names:
        return s.cam_layer_fallback
    return s.cam_layer
