"""Everything that lives inside a genrenet model: the log-mel front-end, SpecAugment, in-graph WAV decoding and
resampling, the blocks builders are made of, and the ensemble and token layers.

Importing this package registers every serializable genrenet layer with Keras, so any saved genrenet model
loads once ``genrenet.nn`` is imported.
"""
from .augment import SpecAugment
from .blocks import (BN_MOMENTUM, attention_pooling, classifier, conv_block, conv_stack, dense_block, global_pool_1d,
                     global_pool_2d, penultimate_model, self_attention, spectrogram_input, to_sequence, waveform_input)
from .ensemble import Combine, FitWindow
from ..features import FeatureConfig
from .frontend import LogMelSpectrogram, fused_frontend
from .tokens import ClassTokenPositionEmbedding

__all__ = ["BN_MOMENTUM", "ClassTokenPositionEmbedding", "Combine", "FeatureConfig", "FitWindow", "LogMelSpectrogram",
           "SpecAugment", "attention_pooling", "classifier", "conv_block", "conv_stack", "dense_block",
           "fused_frontend", "global_pool_1d", "global_pool_2d", "penultimate_model", "self_attention",
           "spectrogram_input", "to_sequence", "waveform_input"]
