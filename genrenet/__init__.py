"""genrenet: a Keras model zoo for music genre classification, from raw audio to TF Serving.

Public API: the registry (``build_model``, ``list_models``, ``model_info``, ``register_model``), the front-end
(``FeatureConfig``, ``LogMelSpectrogram``), data (``load_dataset``), the workflow (``train`` with its
``TrainConfig``, ``evaluate``, ``export``, ``predict``) and ready-to-run presets (``list_presets``,
``preset_info``, ``load_preset``). Every error raised on purpose is a
:class:`~genrenet.errors.GenrenetError`.
"""
__version__ = "0.1.0"

from .data import load_dataset
from .errors import GenrenetError
from .infer.evaluate import evaluate
from .infer.predict import predict
from .nn import FeatureConfig, LogMelSpectrogram
from .presets import list_presets, load_preset, preset_info
from .registry import ModelSpec, build_model, list_models, model_info, register_model
from .serve.export import export
from .train.config import TrainConfig
from .train.trainer import train

__all__ = ["FeatureConfig", "GenrenetError", "LogMelSpectrogram", "ModelSpec", "build_model", "evaluate", "export",
           "list_models", "list_presets", "load_dataset", "load_preset", "model_info", "predict", "preset_info",
           "register_model", "train", "TrainConfig", "__version__"]
