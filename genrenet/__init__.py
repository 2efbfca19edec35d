"""genrenet: a Keras model zoo for music genre classification, from raw audio to TF Serving.

Public API: the registry (``build_model``, ``list_models``, ``model_info``, ``register_model``), the front-end
(``FeatureConfig``, ``LogMelSpectrogram``), data (``load_dataset``), the workflow (``train`` with its
``TrainConfig`` into a ``Run``, ``evaluate``, ``export``), a model you can run (``Classifier.from_preset`` for a
preset, a run, an export or a ``.tflite`` file; ``predict``, ``plot_timeline`` and ``embed`` as one-call
conveniences), ready-to-run presets (``list_presets``, ``preset_info``, ``load_preset``), genres written into
audio files' tags (``tag_files``, ``undo_tags``; extra ``[library]``), and with the ``[beam]`` extra
``ClassifyAudio``, the Apache Beam transform of :mod:`genrenet.infer.beam`. Every error raised on purpose is a
:class:`~genrenet.errors.GenrenetError`.

The names are imported on first use (PEP 562), so ``import genrenet`` does not import TensorFlow: the command
line can quiet TensorFlow's start-up messages before TensorFlow loads.
"""
import importlib

__version__ = "0.1.0"

_HOMES = {
    "load_dataset": "data", "GenrenetError": "errors", "evaluate": "infer.evaluate", "predict": "infer.classifier",
    "FeatureConfig": "features", "LogMelSpectrogram": "nn", "ModelSpec": "registry", "build_model": "registry",
    "list_models": "registry", "model_info": "registry", "register_model": "registry", "export": "serve.export",
    "TrainConfig": "training.config", "train": "training.trainer", "Run": "run", "plot_timeline": "infer.classifier",
    "Classifier": "infer.classifier", "embed": "infer.classifier",
    "ClassifyAudio": "infer.beam", "list_presets": "presets", "preset_info": "presets", "load_preset": "presets",
    "tag_files": "library", "undo_tags": "library", "build_index": "library.index", "similar": "library.index",
}

__all__ = sorted(_HOMES) + ["__version__"]


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'genrenet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES))
