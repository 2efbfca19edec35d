"""Presets: named, ready-to-run models shipped with genrenet, so ``genrenet predict song.mp3`` works without
training.

A preset is a run directory in all but its model file: ``config.json``, ``labels.json``, ``metrics.json``, a
model card ``README.md``, ``preset.json`` (what ``genrenet presets`` lists) and, for a preset with a head of its
own, ``head.npz``, the trained ``probabilities`` layer (a few kB). The pretrained backbone's weights ship once
with genrenet (``genrenet/models/weights``) and are shared by every preset; a tagger preset
(``"multi_label": true``) keeps the backbone's own 50-tag sigmoid head and ships no ``head.npz``. ``calibration.json`` (when present) is the temperature
fitted out-of-fold. :func:`materialise` rebuilds the full model once, writes it as an ordinary run
directory into the per-user cache (:func:`cache_dir`), and returns that directory; ``Classifier.from_preset``
opens it, so everything that takes a model source (``predict``, ``evaluate``, ``embed``, ``export``, the app,
Beam) takes a preset too.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib.metadata import version as package_version

import numpy as np

from ..errors import PresetError
from ..run import CALIBRATION_FILE, Run, claim_run_dir, is_run_dir, staging_dir, write_run
from ..run.config import structured_config

PRESETS_DIR = os.path.dirname(os.path.abspath(__file__))
#: The preset ``genrenet predict FILE...`` uses when no source is given.
DEFAULT_PRESET = "musicnn-msd-gtzan"
HEAD_FILE = "head.npz"
SHIPPED_FILES = ("config.json", "labels.json", "metrics.json", "README.md", "preset.json", HEAD_FILE,
                 CALIBRATION_FILE)


def shipped_files(folder: str) -> list:
    """The shipped files present in a preset folder (a tagger preset has no ``head.npz``)."""
    return [name for name in SHIPPED_FILES if os.path.isfile(os.path.join(folder, name))]


def list_presets() -> list:
    """Names of the shipped presets, sorted."""
    return sorted(d for d in os.listdir(PRESETS_DIR) if os.path.isfile(os.path.join(PRESETS_DIR, d, "preset.json")))


def is_preset(name) -> bool:
    """Whether ``name`` names a shipped preset."""
    return isinstance(name, str) and name in list_presets()


def preset_dir(name: str) -> str:
    """The package folder of preset ``name``; :class:`PresetError` lists the known names otherwise."""
    if not is_preset(name):
        raise PresetError(f"unknown preset {name!r}; available: {', '.join(list_presets()) or 'none'}")
    return os.path.join(PRESETS_DIR, name)


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def preset_info(name: str) -> dict:
    """What ``genrenet presets`` shows: name, summary, backbone, labels, whether it tags (``multi_label``),
    training data, measured accuracy (``None`` for a tagger: there is no validation data), parameters, shipped
    size, whether it is the default."""
    folder = preset_dir(name)
    info = _read_json(os.path.join(folder, "preset.json"))
    model = _model_part(folder)
    return {"name": name, "multi_label": False, **info, "model": model["name"], "pretrained": model["hyperparameters"].get("pretrained"),
            "labels": _read_json(os.path.join(folder, "labels.json")),
            "shipped_bytes": sum(os.path.getsize(os.path.join(folder, f)) for f in shipped_files(folder)),
            "default": name == DEFAULT_PRESET}


def _model_part(folder: str) -> dict:
    """The ``model`` part of a preset's ``config.json``."""
    return structured_config(_read_json(os.path.join(folder, "config.json")))["model"]


def cache_dir() -> str:
    """Where presets are materialised as run directories: ``presets`` below the cache root
    (:func:`~genrenet.data.cache.cache_root`: ``$GENRENET_CACHE``, else ``~/.cache/genrenet``)."""
    from ..data.cache import cache_root

    return os.path.join(cache_root(), "presets")


def _fingerprint(folder: str) -> str:
    """A hash of the shipped files and the genrenet version: a changed preset gets a new run directory."""
    digest = hashlib.sha256(package_version("genrenet").encode())
    for name in shipped_files(folder):
        with open(os.path.join(folder, name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]


def build_preset_model(name: str):
    """The full Keras model of preset ``name``: the pretrained backbone with the shipped head weights (a tagger
    preset keeps the backbone's own tag head)."""
    from ..registry import build_model

    folder = preset_dir(name)
    part = _model_part(folder)
    tagger = part.get("multi_label", False)
    model = build_model(part["name"], num_classes=None if tagger else part["num_classes"],
                        pretrained=part["hyperparameters"]["pretrained"], freeze_backbone=not tagger)
    if tagger:
        return model
    with np.load(os.path.join(folder, HEAD_FILE)) as head:
        model.get_layer("probabilities").set_weights([head["kernel"], head["bias"]])
    return model


def materialise(name: str) -> str:
    """The run directory of preset ``name`` in :func:`cache_dir`, written on first use (atomically: a
    half-written one is never used)."""
    folder = preset_dir(name)
    target = os.path.join(cache_dir(), f"{name}-{_fingerprint(folder)}")
    if is_run_dir(target):
        return target
    model = build_preset_model(name)
    os.makedirs(cache_dir(), exist_ok=True)
    tmp = staging_dir(cache_dir(), f".{name}-")
    try:
        claim_run_dir(tmp)  # before the preset's own files go in: the folder is a run genrenet writes
        for name in set(shipped_files(folder)) & {"README.md", "preset.json", HEAD_FILE, CALIBRATION_FILE}:
            shutil.copyfile(os.path.join(folder, name), os.path.join(tmp, name))
        write_run(tmp, model, labels=_read_json(os.path.join(folder, "labels.json")),
                  config=_read_json(os.path.join(folder, "config.json")),
                  metrics=_read_json(os.path.join(folder, "metrics.json")))
        os.rename(tmp, target)
    except OSError:
        if not is_run_dir(target):  # another process finishing first is fine; anything else is an error
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_preset(name: str):
    """The preset's Keras model (waveform → window probabilities), the one ``predict`` runs; ``predict`` also
    tempers each window's probabilities by the preset's ``calibration.json`` before averaging a clip."""
    return Run(materialise(name)).load_model()
