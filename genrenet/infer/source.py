"""Model sources: what kind a source is (a preset, a run directory, an exported SavedModel version directory or a
``.tflite`` file) and the facts every consumer needs from it, read from its metadata without loading the model.

:func:`open_source` is the one place that decides a source's kind; :class:`~genrenet.infer.classifier.Classifier`
is built on what it returns.
"""
from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Optional

from ..data.files import holds_audio
from ..errors import ConfigError, RunError
from ..features import FeatureConfig
from ..presets import DEFAULT_PRESET, is_preset, list_presets, materialise
from ..run import LOCK_FILE, Run, calibration_temperature, is_started_run
from .calibration import DEFAULT_MIN_CONFIDENCE
from .multilabel import read_thresholds, thresholds_for
from .tflite_metadata import read_metadata

EXPORT_META_FILE = "genrenet.json"  # assets/genrenet.json of an exported SavedModel
SAVED_MODEL_FILE = "saved_model.pb"
KINDS = ("preset", "run", "savedmodel", "tflite")


class SourceError(RunError):
    """A model source that cannot be opened: the message says what the path is and what was expected."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A model source's kind and what every consumer needs: labels, rate, window, front-end, multi-label, and for
    a tagger its per-tag ``thresholds`` (in label order; None when it has none: then top-k)."""

    source: str
    kind: str
    path: str
    labels: list
    sample_rate: int
    window_samples: int
    features: FeatureConfig
    multi_label: bool = False
    model_name: Optional[str] = None
    thresholds: Optional[list] = None
    calibration: Optional[dict] = None  # calibration.json of a run, or what an export's metadata records of it

    @property
    def min_confidence(self) -> float:
        """The top probability below which a prediction is ``uncertain``: chosen on held-out clips when the
        source is calibrated, else :data:`~genrenet.infer.calibration.DEFAULT_MIN_CONFIDENCE`."""
        return float((self.calibration or {}).get("min_confidence", DEFAULT_MIN_CONFIDENCE))

    @property
    def temperature(self) -> float:
        """The calibration temperature a Keras runtime or a converted LiteRT file applies (1: none)."""
        return calibration_temperature(self.calibration)


def open_source(source) -> ModelSource:
    """The :class:`ModelSource` of a preset name, a run directory, an exported SavedModel version directory or a
    ``.tflite`` file. Anything else raises :class:`SourceError` saying what the path is (an unfinished run, an
    export root, a folder of audio, a missing path) and what was expected."""
    text = os.fspath(source)
    if not os.path.lexists(text):
        if is_preset(text):
            return run_source(text, "preset", Run(materialise(text)))
        raise SourceError(f"{text}: no such file or folder, and not a preset ({expected()})")
    if os.path.isdir(text):
        return directory_source(text)
    if text.lower().endswith(".tflite"):
        return tflite_source(text)
    raise SourceError(f"{text}: not a model ({expected()})")


def expected() -> str:
    """What a model source can be, for error messages."""
    return ("expected a run directory (model.keras + config.json), an exported SavedModel version directory "
            f"(saved_model.pb), a .tflite file, or a preset: {', '.join(list_presets())}")


def directory_source(path: str) -> ModelSource:
    """A run directory or an export version directory; a clear error for an unfinished run, an export root or a
    folder that cannot be read."""
    if not os.access(path, os.R_OK | os.X_OK):
        raise SourceError(f"{path}: cannot read the folder (permission denied)")
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        return savedmodel_source(path)
    if is_started_run(path) or os.path.exists(os.path.join(path, LOCK_FILE)):
        return run_source(path, "run", Run(path))  # Run says which file an unfinished run lacks
    versions = export_versions(path)
    if versions:
        raise SourceError(f"{path}: an export folder; name one of its version directories, e.g. {versions[-1]}")
    raise SourceError(f"{path}: neither a run directory nor an exported SavedModel ({expected()})")


def export_versions(path: str) -> list:
    """The SavedModel version directories below an export root (``ROOT/<name>/<N>`` or ``ROOT/<N>``)."""
    found = []
    for parent in [path] + sorted(os.path.join(path, d) for d in os.listdir(path)):
        if os.path.isdir(parent):
            found += sorted((os.path.join(parent, v) for v in os.listdir(parent) if v.isdigit()
                             and os.path.isfile(os.path.join(parent, v, SAVED_MODEL_FILE))),
                            key=lambda p: int(os.path.basename(p)))
    return found


def run_source(source: str, kind: str, run: Run) -> ModelSource:
    """The facts of a run directory (a preset is one, materialised in the cache)."""
    return ModelSource(source=source, kind=kind, path=run.path, labels=list(run.labels),
                       sample_rate=run.sample_rate, window_samples=run.window_samples, features=run.features,
                       multi_label=bool(run.config["model"].get("multi_label", False)),
                       model_name=run.model_name, thresholds=run_thresholds(run),
                       calibration=run.calibration)


def run_thresholds(run: Run) -> Optional[list]:
    """The per-tag thresholds of a run's ``thresholds.json`` (None without one); a file that does not match the
    run's labels raises :class:`SourceError` naming it."""
    try:
        return read_thresholds(run.path, run.labels)
    except (ValueError, KeyError, TypeError) as e:
        raise SourceError(f"{e}: write it again, or delete it to use top-k tags") from None


def load_export_meta(path: str) -> dict:
    """The ``genrenet.json`` recorded beside an exported SavedModel."""
    meta_path = os.path.join(path, "assets", EXPORT_META_FILE)
    try:
        with open(meta_path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SourceError(f"{path}: a SavedModel without genrenet's metadata ({meta_path} is missing): "
                          "export it with `genrenet export`") from None


def savedmodel_source(path: str) -> ModelSource:
    """The facts of an exported SavedModel version directory, from its ``assets/genrenet.json``."""
    return meta_source(path, "savedmodel", load_export_meta(path))


def tflite_source(path: str) -> ModelSource:
    """The facts of a ``.tflite`` file: from the JSON beside it, else from its embedded TFLite Model Metadata
    (the window is then the model's input length, the front-end librosa-style at the model's rate)."""
    return meta_source(path, "tflite", tflite_meta(path))


def meta_source(path: str, kind: str, meta: dict) -> ModelSource:
    """The facts an export's metadata records (the front-end librosa-style at the model's rate when absent)."""
    rate = int(meta["sample_rate"])
    features = meta.get("features")
    return ModelSource(source=path, kind=kind, path=path, labels=list(meta["labels"]), sample_rate=rate,
                       window_samples=int(meta["window_samples"]),
                       features=FeatureConfig.from_dict(features) if features else FeatureConfig(sample_rate=rate),
                       multi_label=bool(meta.get("multi_label", False)), model_name=meta.get("model"),
                       thresholds=meta_thresholds(meta, path), calibration=meta.get("calibration"))


def meta_thresholds(meta: dict, path: str) -> Optional[list]:
    """The per-tag thresholds an export's metadata records (``thresholds``), or None."""
    if not meta.get("thresholds"):
        return None
    try:
        return thresholds_for(meta["thresholds"], meta["labels"], path)
    except (ValueError, KeyError, TypeError) as e:
        raise SourceError(f"{e}: export it again") from None


def tflite_meta_path(path: str) -> Optional[str]:
    """The metadata of a ``.tflite`` file: ``<file>.json`` beside it, else its version dir's assets/genrenet.json."""
    for candidate in (os.path.splitext(path)[0] + ".json",
                      os.path.join(os.path.dirname(os.path.abspath(path)), "assets", EXPORT_META_FILE)):
        if os.path.isfile(candidate):
            return candidate
    return None


def tflite_meta(path: str) -> dict:
    """``labels``, ``sample_rate``, ``window_samples`` (and ``features`` when recorded) of a ``.tflite`` file."""
    meta_path = tflite_meta_path(path)
    if meta_path is not None:
        with open(meta_path, encoding="utf-8") as f:
            return json.load(f)
    with open(path, "rb") as f:
        content = f.read()
    try:
        embedded = read_metadata(content)
    except ValueError:
        embedded = {}
    if not embedded.get("labels") or not embedded.get("sample_rate"):
        raise SourceError(f"{path}: no labels or sample rate, neither in the file's TFLite Model Metadata "
                          f"nor beside it (expected {os.path.splitext(path)[0]}.json or assets/{EXPORT_META_FILE} "
                          "in its folder, as `genrenet export --tflite` writes them)")
    window_samples = int(tflite_interpreter(path).get_input_details()[0]["shape"][-1])
    return {"labels": embedded["labels"], "sample_rate": embedded["sample_rate"], "window_samples": window_samples}


def tflite_interpreter(path: Optional[str] = None, num_threads: Optional[int] = None, *,
                       content: Optional[bytes] = None):
    """A LiteRT interpreter of the file ``path`` or the bytes ``content`` (``tf.lite.Interpreter`` where LiteRT
    is not installed)."""
    try:  # LiteRT is the maintained home of the interpreter; tf.lite.Interpreter still works in TF 2.21
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_path=path, model_content=content,
                           num_threads=num_threads or min(4, usable_cores()))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def names_model(path) -> bool:
    """Whether ``path`` names a model source rather than audio: a preset name that is no file, a ``.tflite``
    file, a folder holding a SavedModel, anything a run writes, or SavedModel versions below it."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return is_preset(path)
    if not os.path.isdir(path):
        return path.lower().endswith(".tflite")
    if is_started_run(path) or os.path.exists(os.path.join(path, LOCK_FILE)):
        return True  # a run, finished or not
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        return True
    return os.access(path, os.R_OK | os.X_OK) and bool(export_versions(path))


def split_source(inputs) -> tuple:
    """``(source, paths)`` from ``[SOURCE] FILE_OR_FOLDER...``: the first names the model when it is one (or
    looks like one that is broken, so that the error says why), or when more follow and it is not audio (a
    missing path, a folder without audio). Otherwise every input is audio and the source is ``None`` (the
    default preset). An existing path is never silently swapped for the default preset."""
    inputs = [os.fspath(i) for i in inputs]
    if not inputs:
        raise ConfigError("no model and no audio files given")
    first, rest = inputs[0], inputs[1:]
    audio_folder = os.path.isdir(first) and os.access(first, os.R_OK | os.X_OK) and holds_audio(first)
    if names_model(first) or (rest and not audio_folder and not os.path.isfile(first)):
        if not rest:
            raise ConfigError(f"no audio files given after the model {first}")
        return first, rest
    return None, inputs


def default_source(source) -> tuple:
    """``(source, note)``: ``source`` itself, or the default preset with a note saying so."""
    if source is not None:
        return source, None
    return DEFAULT_PRESET, (f"no model given: using the default preset {DEFAULT_PRESET} "
                            "(`genrenet presets` lists the presets)")
