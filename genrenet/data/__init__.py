"""Datasets (specs → clips), decoding, the tf.data pipeline and the built-in synthetic music."""
from .audio import AudioError, load_audio
from .pipeline import SkipLog, training_dataset, validation_dataset, window_dataset
from .sources import Clip, ClipDataset, DatasetError, load_dataset
from .split import holdout_split

__all__ = ["AudioError", "Clip", "ClipDataset", "DatasetError", "SkipLog", "holdout_split", "load_audio",
           "load_dataset", "training_dataset", "validation_dataset", "window_dataset"]
