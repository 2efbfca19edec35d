"""One registry for every architecture: ``build_model("crnn_attention")``.

A builder is a plain function ``fn(num_classes, features, window_seconds, multi_label, **kwargs) -> keras.Model``
decorated with :func:`register_model`; the registry-wide tests pick it up automatically.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Callable, Optional

import keras

from .errors import ConfigError, ModelArgumentError, RegistryError, UnknownModelError
from .features import FeatureConfig

# What build_model passes every builder (not hyper-parameters: they describe the input and training, not the body).
BUILDER_INPUTS = ("num_classes", "features", "window_seconds", "multi_label", "spec_augment")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one architecture."""

    name: str
    builder: Callable[..., keras.Model]
    description: str
    reference: str
    features: FeatureConfig
    window_seconds: float
    pretrained: tuple = ()
    family: str = ""

    def window_samples(self, features: Optional[FeatureConfig] = None) -> int:
        """Samples in one window at ``features``' sample rate (the model's own by default)."""
        return int(round(self.window_seconds * (features or self.features).sample_rate))

    def defaults(self) -> dict:
        """The builder's keyword arguments and their default values (its hyper-parameters)."""
        params = inspect.signature(self.builder).parameters
        return {
            k: p.default
            for k, p in params.items()
            if p.default is not inspect.Parameter.empty and k not in BUILDER_INPUTS
        }

    @property
    def takes_spec_augment(self) -> bool:
        """Whether the builder starts from :func:`~genrenet.nn.spectrogram_input` (so SpecAugment fits)."""
        return "spec_augment" in inspect.signature(self.builder).parameters

    @property
    def takes_multi_label(self) -> bool:
        """Whether the builder can end in independent sigmoids (``multi_label``) instead of a softmax."""
        return "multi_label" in inspect.signature(self.builder).parameters


_REGISTRY: dict[str, ModelSpec] = {}
_discovered = False


def register_model(
    name: str,
    *,
    description: str,
    reference: str = "",
    features: FeatureConfig = FeatureConfig(),
    window_seconds: float = 3.0,
    pretrained: tuple = (),
):
    """Decorator registering a builder under ``name``. Registering a name twice raises
    :class:`~genrenet.errors.RegistryError`."""

    def decorate(fn):
        if name in _REGISTRY:
            raise RegistryError(f"model {name!r} is already registered (by {_REGISTRY[name].builder.__module__})")
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=fn,
            description=description,
            reference=reference,
            features=features,
            window_seconds=float(window_seconds),
            pretrained=tuple(pretrained),
            family=fn.__module__.rsplit(".", 1)[-1],
        )
        return fn

    return decorate


def _discover_models():
    """Import every module of :mod:`genrenet.models` once, so a file dropped there registers its builders.

    A module that fails to import raises a :class:`~genrenet.errors.RegistryError` naming it (a family never
    vanishes silently).
    """
    global _discovered
    if _discovered:
        return
    from . import models

    for module in pkgutil.iter_modules(models.__path__):
        name = f"{models.__name__}.{module.name}"
        try:
            importlib.import_module(name)
        except Exception as e:
            raise RegistryError(f"model module {name} failed to import: {type(e).__name__}: {e}") from e
    _discovered = True


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _discover_models()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name``; a KeyError lists the known names."""
    _discover_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def model_info(name: str) -> dict:
    """Description, reference, default FeatureConfig, window length, pretrained tags and hyper-parameters."""
    spec = get_spec(name)
    return {
        "name": spec.name,
        "family": spec.family,
        "description": spec.description,
        "reference": spec.reference,
        "features": spec.features.to_dict(),
        "window_seconds": spec.window_seconds,
        "pretrained": list(spec.pretrained),
        "defaults": spec.defaults(),
    }


def check_hyperparameters(name: str, values: dict):
    """Raise before anything is built for a hyper-parameter ``name``'s builder does not take
    (:class:`~genrenet.errors.ModelArgumentError` listing the ones it does), or one whose value is not of its
    default's kind (:class:`~genrenet.errors.ConfigError`: ``dropout="abc"`` would fail deep inside Keras)."""
    defaults = get_spec(name).defaults()
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ModelArgumentError(f"{name} does not take {unknown}; its hyper-parameters are {sorted(defaults)}",
                                 param=f"model_kwargs.{unknown[0]}")
    for key, value in values.items():
        kind = _kind(defaults[key])
        if kind and _kind(value) != kind and not (kind == "a number" and _kind(value) == "an integer"):
            raise ConfigError(f"must be {kind}, got {value!r}", param=f"model_kwargs.{key}")
        problem = _out_of_range(key, defaults[key], value)
        if problem:
            raise ConfigError(f"{problem}, got {value!r}", param=f"model_kwargs.{key}")


def _numbers(value) -> list:
    """The numbers in a hyper-parameter's value, in nested lists too (``filters=[16, 32]``); None: not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        parts = [_numbers(v) for v in value]
        return None if any(p is None for p in parts) else [n for p in parts for n in p]
    return None


def _out_of_range(key: str, default, value) -> str:
    """Why ``value`` is out of the hyper-parameter's range ('' when it is not): a dropout rate is in [0, 1);
    sizes, counts and ratios whose defaults are positive (filters, units, heads, ...) must be positive, and
    whole where the default is; lists of them must not be empty."""
    if "dropout" in key:
        return "" if 0 <= value < 1 else "must be in [0, 1)"
    wanted, given = _numbers(default), _numbers(value)
    if not wanted or not all(n > 0 for n in wanted):
        return ""
    if given is None:
        return "must be numbers" if isinstance(default, (list, tuple)) else "must be a number"
    if all(isinstance(n, int) for n in wanted) and not all(isinstance(n, int) and n >= 1 for n in given):
        return "must be whole numbers ≥ 1" if isinstance(default, (list, tuple)) else "must be ≥ 1"
    return "" if all(n > 0 for n in given) else "must be > 0"


def _kind(value) -> str:
    """What a hyper-parameter's value is, in words ('' for a default of None: anything goes)."""
    if value is None:
        return ""
    for kind, types in (("true or false", bool), ("an integer", int), ("a number", float),
                        ("a list", (list, tuple)), ("a string", str), ("a dict", dict)):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def build_model(
    name: str,
    num_classes: Optional[int] = 10,
    *,
    features: FeatureConfig | dict | None = None,
    window_seconds: Optional[float] = None,
    spec_augment: Optional[dict] = None,
    multi_label: bool = False,
    **overrides,
) -> keras.Model:
    """Build a registered model: input ``waveform`` [batch, samples], output ``probabilities`` [batch, C].

    ``multi_label=True`` ends the model in one independent sigmoid per class (tags: a clip may carry several)
    instead of a softmax over the classes.

    ``features`` and ``window_seconds`` default to the model's own. ``spec_augment`` (parameters of
    :class:`~genrenet.nn.SpecAugment`) adds training-only masking after the front-end; a model with its own
    front-end raises :class:`~genrenet.errors.ConfigError` for it. Other keyword arguments override the
    builder's hyper-parameters; unknown ones raise :class:`~genrenet.errors.ModelArgumentError` (a
    ``TypeError``) naming the valid ones.
    """
    spec = get_spec(name)
    if isinstance(features, dict):
        features = FeatureConfig.from_dict(features)
    check_hyperparameters(name, overrides)
    if spec_augment:
        if not spec.takes_spec_augment:
            raise ConfigError(f"{name} has its own front-end (no spectrogram_input): SpecAugment cannot be added")
        overrides["spec_augment"] = dict(spec_augment)
    if multi_label:
        if not spec.takes_multi_label:
            raise ConfigError(f"{name}'s builder takes no multi_label argument: give it one and end the model "
                              "with genrenet.nn.blocks.classifier(x, num_classes, multi_label)")
        overrides["multi_label"] = True
    return spec.builder(
        num_classes=num_classes,
        features=features or spec.features,
        window_seconds=window_seconds or spec.window_seconds,
        **overrides,
    )
