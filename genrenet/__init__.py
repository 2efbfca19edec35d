"""genrenet: a Keras model zoo for music genre classification, from raw audio to TF Serving.

Public API: the registry (``build_model``, ``list_models``, ``model_info``, ``register_model``), the front-end
(``FeatureConfig``, ``LogMelSpectrogram``), data (``load_dataset``) and the workflow (``train``, ``evaluate``,
``export``, ``predict``).
"""
__version__ = "0.1.0"

from .data import load_dataset
from .evaluation import evaluate
from .export import export
from .features import FeatureConfig, LogMelSpectrogram
from .predict import predict
from .registry import ModelSpec, build_model, list_models, model_info, register_model
from .training import train

__all__ = ["FeatureConfig", "LogMelSpectrogram", "ModelSpec", "build_model", "evaluate", "export", "list_models",
           "load_dataset", "model_info", "predict", "register_model", "train", "__version__"]
