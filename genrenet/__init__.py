"""genrenet: a Keras model zoo for music genre classification, from raw audio to TF Serving."""
from .features import FeatureConfig, LogMelSpectrogram
from .registry import ModelSpec, build_model, list_models, model_info, register_model

__version__ = "0.1.0"
__all__ = ["FeatureConfig", "LogMelSpectrogram", "ModelSpec", "build_model", "list_models", "model_info",
           "register_model", "__version__"]
