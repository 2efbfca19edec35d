"""Datasets (specs → clips), decoding, the tf.data pipelines, augmentation and the built-in synthetic music.

Modules by job: ``sources`` (dataset kinds), ``audio`` (decoding), ``cache`` (the cache root and
:class:`CachePolicy`), ``memory`` (decoded sizes, the disk cache), ``decoding`` (clips into tf.data), ``skips``
(:class:`SkipLog`), ``training`` (the training pipeline and its :class:`TrainingSpec`), ``windows`` (inference
windows), ``files`` (the audio files of files, folders and patterns a user names), ``augment``, ``split``,
``service`` (the tf.data service).

The names are imported on first use (PEP 562), so ``import genrenet.data`` does not import TensorFlow.
"""
import importlib

_HOMES = {
    "AudioCache": "memory", "AudioError": "audio", "load_audio": "audio", "Augment": "augment",
    "AugmentError": "augment", "CachePolicy": "cache", "cache_root": "cache", "Clip": "sources",
    "ClipDataset": "sources", "DatasetError": "sources", "load_dataset": "sources", "with_folds": "sources",
    "SkipLog": "skips", "NotMusic": "skips", "holdout_split": "split", "kfold": "split", "TrainingSpec": "training",
    "training_epochs": "training", "validation_dataset": "training", "streamed_window_batches": "windows",
    "window_dataset": "windows",
}

__all__ = sorted(_HOMES)


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'genrenet.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES))
