"""genrenet: a Keras model zoo for music genre classification, from raw audio to TF Serving.

Public API: the registry (``build_model``, ``list_models``, ``model_info``, ``register_model``), the front-end
(``FeatureConfig``, ``LogMelSpectrogram``), data (``load_dataset``) and the workflow (``train`` with its
``TrainConfig``, ``evaluate``, ``export``, ``predict``), and with the ``[beam]`` extra ``ClassifyAudio``, the Apache
Beam transform of :mod:`genrenet.infer.beam` (imported on first use). Every error raised on purpose is a
:class:`~genrenet.errors.GenrenetError`.
"""
__version__ = "0.1.0"

from .data import load_dataset
from .errors import GenrenetError
from .infer.evaluate import evaluate
from .infer.predict import predict
from .nn import FeatureConfig, LogMelSpectrogram
from .registry import ModelSpec, build_model, list_models, model_info, register_model
from .serve.export import export
from .train.config import TrainConfig
from .train.trainer import train

__all__ = ["FeatureConfig", "GenrenetError", "LogMelSpectrogram", "ModelSpec", "build_model", "evaluate", "export",
           "list_models", "load_dataset", "model_info", "predict", "register_model", "train", "TrainConfig", "__version__"]


def __getattr__(name):
    """``genrenet.ClassifyAudio``: Apache Beam is an optional extra, imported only when the transform is used."""
    if name == "ClassifyAudio":
        from .infer.beam import ClassifyAudio

        return ClassifyAudio
    raise AttributeError(f"module 'genrenet' has no attribute {name!r}")
