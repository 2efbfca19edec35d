"""The layout of a run's ``config.json``, and reading one back to train the same run again.

``config.json`` has one part per subject, so a reader never guesses which key belongs to what::

    {"format": 2,
     "model": {"name", "hyperparameters", "features", "window_seconds", "window_samples", "num_classes",
               "multi_label"},
     "training": TrainConfig.to_dict(),
     "data": {"spec", "train_clips", "val_clips", "notes"},
     "run": {"replicas", "global_batch_size", "command", "versions"}}

An ensemble's ``model`` part holds ``name: "ensemble"``, ``method``, ``weights`` and ``members`` instead of
``hyperparameters``, and it has no ``training`` part. Format 1 (no ``format`` key) holds all of it in one flat
dict; :func:`structured_config` reads both, and is the one place that knows either layout. A key it
does not know raises :class:`~genrenet.errors.ConfigError` naming the closest known one; the ``training`` part's
keys are checked by :meth:`~genrenet.training.config.TrainConfig.from_dict` when a run is trained again.
"""
from __future__ import annotations

import copy
import difflib

from ..errors import ConfigError

FORMAT = 2
SECTIONS = ("format", "model", "training", "data", "run")
MODEL_KEYS = ("name", "hyperparameters", "features", "window_seconds", "window_samples", "num_classes",
              "multi_label")
ENSEMBLE_KEYS = ("name", "method", "weights", "members", "features", "window_seconds", "window_samples",
                 "num_classes")
DATA_KEYS = ("spec", "train_clips", "val_clips", "notes")
RUN_KEYS = ("replicas", "global_batch_size", "command", "versions")
REQUIRED_MODEL_KEYS = ("name",)
# Format 1 kept the training settings at the top level: these are the ones it wrote.
FORMAT1_TRAINING_KEYS = (
    "epochs", "batch_size", "learning_rate", "lr_schedule", "label_smoothing", "seed", "patience", "val_fraction",
    "window_seconds", "crops_per_clip", "model_kwargs", "pretrained", "freeze_backbone", "head", "fine_tune_epochs",
    "fine_tune_learning_rate", "augment", "cache", "memory_budget", "deterministic", "mixed_precision", "strategy",
    "data_service", "evaluate_val")
# Format 1's keys outside TrainConfig, and where each goes (``model`` is the model's name there).
FLAT_KEYS = {"model": ("model", "name"), "data": ("data", "spec"),
             **{k: ("model", k) for k in MODEL_KEYS[1:] + ENSEMBLE_KEYS[1:4]},
             **{k: ("data", k) for k in DATA_KEYS[1:]}, **{k: ("run", k) for k in RUN_KEYS}}


def structured_config(raw: dict) -> dict:
    """``config.json`` as a dict in the sectioned layout, from either layout; a copy, checked key by key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config.json must hold a JSON object, got {type(raw).__name__}")
    config = copy.deepcopy(raw) if "format" in raw else from_flat(raw)
    if config["format"] != FORMAT:
        raise ConfigError(f"config.json format {config['format']!r} is not one genrenet reads (it reads {FORMAT} "
                          "and the flat format 1); a newer genrenet wrote it?")
    check_known(config, SECTIONS, "config.json part")
    model = config.get("model")
    if not isinstance(model, dict):
        raise ConfigError("config.json needs a model part: {\"name\": ..., \"features\": ..., ...}")
    ensemble = model.get("name") == "ensemble"
    check_known(model, ENSEMBLE_KEYS if ensemble else MODEL_KEYS, "model key")
    if not isinstance(config.get("training", {}), dict):
        raise ConfigError("config.json: the training part must be an object of settings")
    check_known(config.get("data", {}), DATA_KEYS, "data key")
    check_known(config.get("run", {}), RUN_KEYS, "run key")
    missing = [k for k in REQUIRED_MODEL_KEYS if k not in model]
    if missing:
        raise ConfigError(f"config.json: the model part lacks {', '.join(missing)}")
    return config


def from_flat(raw: dict) -> dict:
    """The sectioned layout of a flat ``config.json`` (format 1): every key moved to its part."""
    check_known(raw, FORMAT1_TRAINING_KEYS + tuple(FLAT_KEYS), "config.json key")
    config = {"format": FORMAT, "model": {}}
    training = {k: v for k, v in raw.items() if k in FORMAT1_TRAINING_KEYS}
    if training:
        config["training"] = training
    for key, (part, name) in FLAT_KEYS.items():
        if key in raw:
            config.setdefault(part, {})[name] = raw[key]
    return config


def check_known(keys, known, what: str):
    """Raise :class:`~genrenet.errors.ConfigError` for the first of ``keys`` not in ``known``, naming the closest
    known one (``unknown training setting 'epoch' (did you mean 'epochs'?)``)."""
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(map(str, known))}"
            raise ConfigError(f"unknown {what} {key!r} ({hint})")
