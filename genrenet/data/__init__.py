"""Datasets (specs → clips), decoding, the tf.data pipeline, augmentation and the built-in synthetic music."""
from .audio import AudioError, load_audio
from .augment import Augment, AugmentError
from .memory import AudioCache
from .pipeline import SkipLog, training_dataset, validation_dataset, window_dataset
from .sources import Clip, ClipDataset, DatasetError, load_dataset, with_folds
from .split import holdout_split, kfold

__all__ = ["AudioCache", "AudioError", "Augment", "AugmentError", "Clip", "ClipDataset", "DatasetError", "SkipLog",
           "holdout_split", "kfold", "load_audio", "load_dataset", "training_dataset",
           "validation_dataset", "window_dataset", "with_folds"]
