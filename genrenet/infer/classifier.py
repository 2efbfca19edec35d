"""``Classifier``: one object for a model you can run.

``Classifier.from_preset(source)`` takes a preset name, a run directory, an exported SavedModel version directory
or a ``.tflite`` file (the keras-hub convention: one constructor for every kind of saved model), decides its kind
once (:func:`~genrenet.infer.source.open_source`) and exposes what every consumer needs: ``labels``,
``sample_rate``, ``window_samples``, ``features``, ``multi_label``, ``source``, and ``predict``, ``timeline`` and
``embed``. The model itself loads on first use. ``genrenet.predict``, ``genrenet.plot_timeline`` and
``genrenet.embed`` are one-call conveniences over it.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from .. import registry
from ..data.files import expand_audio_paths
from ..errors import ConfigError, check_positive, check_whole
from ..features import FeatureConfig
from ..run import Run
from .embed import embed_files, registered_model, write_embeddings
from .predict import predict_files
from .litert import check_runtime
from .runtime import load_runtime
from .source import ModelSource, default_source, open_source
from .tags import Outputs
from .timeline import save_timelines, song_timeline, window_probabilities


class Classifier:
    """A model you can run, whatever it was saved as. Build it with :meth:`from_preset`."""

    def __init__(self, info: ModelSource, runtime: Optional[str] = None, verbose: int = 1):
        self.info = info
        self.runtime = check_runtime(runtime, info.kind)
        self.verbose = verbose
        self.loaded_runtime = None

    @classmethod
    def from_preset(cls, source=None, *, runtime: Optional[str] = None, verbose: int = 1) -> "Classifier":
        """The classifier of a preset name, a run directory, an exported SavedModel version directory or a
        ``.tflite`` file (``None``: the default preset, with a note on stderr when ``verbose``). A path that is
        none of these (an unfinished run, an export root) raises a :class:`~genrenet.errors.RunError` saying
        why; it never falls back to a preset. ``runtime`` (a run or a preset): ``keras`` (None: the default),
        ``tflite`` (converted once to LiteRT, :mod:`genrenet.infer.litert`) or ``auto`` (whichever measured
        faster for the architecture); an export runs as it was exported (None or ``auto``; ``tflite`` too for a
        .tflite file)."""
        if isinstance(source, Classifier):
            return source
        source, note = default_source(source)
        if note and verbose:
            print(f"note: {note}", file=sys.stderr)
        return cls(open_source(source), runtime=runtime, verbose=verbose)

    def __repr__(self):
        return f"Classifier({self.source!r}, kind={self.kind!r}, {len(self.labels)} labels)"

    source = property(lambda self: self.info.source, doc="The source as given (a preset name or a path).")
    kind = property(lambda self: self.info.kind, doc="``preset``, ``run``, ``savedmodel`` or ``tflite``.")
    path = property(lambda self: self.info.path, doc="The run directory, version directory or ``.tflite`` file.")
    labels = property(lambda self: self.info.labels, doc="Class names in output order.")
    sample_rate = property(lambda self: self.info.sample_rate, doc="The rate the model listens at (Hz).")
    window_samples = property(lambda self: self.info.window_samples, doc="Samples in one model window.")
    multi_label = property(lambda self: self.info.multi_label, doc="Independent (sigmoid) probabilities.")
    thresholds = property(lambda self: self.info.thresholds,
                          doc="Per-tag thresholds of a tagger, in label order (None: it has none).")
    calibration = property(lambda self: self.info.calibration,
                           doc="The temperature and threshold fitted on held-out clips (``calibration.json``).")
    model_name = property(lambda self: self.info.model_name, doc="The registered architecture, when known.")

    @property
    def features(self) -> FeatureConfig:
        """The model's front-end settings (librosa-style at its rate when the source does not record them)."""
        return self.info.features

    @property
    def window_seconds(self) -> float:
        """Seconds in one model window."""
        return self.window_samples / self.sample_rate

    @property
    def run(self) -> Optional[Run]:
        """The run directory behind a run or a preset (``None`` for exports)."""
        return Run(self.path) if self.kind in ("run", "preset") else None

    def loaded(self):
        """The runtime with the model loaded (once)."""
        if self.loaded_runtime is None:
            self.loaded_runtime = load_runtime(self.info, self.runtime, self.verbose)
        return self.loaded_runtime

    @property
    def keras_model(self):
        """The Keras model of a run or preset; exports have none (:class:`~genrenet.errors.ConfigError`)."""
        model = self.loaded().keras_model
        if model is None:
            raise ConfigError(f"{self.source}: a {self.kind} has no Keras model; use its run directory or preset")
        return model

    def forward(self, windows):
        """Probabilities ``[n, C]`` of windows ``[n, window_samples]`` float32."""
        return self.loaded().forward(windows)

    def forward_for(self, num_clips: int):
        """The model on windows for a job of ``num_clips`` clips (a Keras model fused when that pays off)."""
        return self.loaded().fused_for(num_clips) or self.forward

    def predict(self, inputs, *, top_k: int = 3, batch_size: Optional[int] = None,
                hop_seconds: Optional[float] = None, min_confidence: Optional[float] = None,
                verbose: int = 1, labels_map=None) -> list[dict]:
        """Classify files, folders (their audio files) and glob patterns: one dict per file with ``file``,
        ``label``, ``uncertain`` (top probability below ``min_confidence``, default the one chosen on held-out
        clips), ``top`` [[label, p]] (``top_k`` best), ``probabilities`` (calibrated) and ``windows`` (a
        multi-label source adds ``tags``, and is ``uncertain`` when no tag passes); ``file``, ``label: None`` and
        ``reason`` for a file with nothing to classify (silent, too short, truncated, NaN/Inf); or ``file`` and
        ``error``. ``labels_map``: a JSON/YAML file {model label: your label}
        (:mod:`genrenet.infer.labelmap`). Notes about files a folder held besides audio go to stderr when
        ``verbose``."""
        check_whole(top_k, "top_k", at_least=1)
        check_whole(batch_size, "batch_size", at_least=1, optional=True)
        check_positive(hop_seconds, "hop_seconds", optional=True)
        paths = audio_paths(inputs, verbose)
        return predict_files(self, paths, top_k=top_k, batch_size=batch_size, hop_seconds=hop_seconds,
                             min_confidence=min_confidence, verbose=verbose, labels_map=labels_map)

    def window_probabilities(self, file):
        """``(times [n], probs [n, C])``: the model on each window of ``file`` (their mean is ``predict``'s)."""
        return window_probabilities(self, file)

    def timeline(self, file, *, title: Optional[str] = None):
        """The genre timeline of ``file`` as a matplotlib Figure (spectrogram above, genres per window below)."""
        return song_timeline(self, file, title=title)[0]

    def save_timelines(self, files, out_dir, *, labels_map=None) -> list[str]:
        """Write each file's timeline to ``out_dir/<stem>.png`` (over a label map's labels when given); returns
        the paths written."""
        return save_timelines(self, files, out_dir, outputs=Outputs.of(self, labels_map))

    def embed(self, inputs, out: Optional[str] = None, *, batch_size: int = 32, verbose: int = 1) -> dict:
        """Clip embeddings (penultimate features, mean over windows) of files, folders or patterns:
        ``{"files", "embeddings" [N, D], "windows" [N], "skipped"}``, also written to ``out`` (.npz or .csv)."""
        check_whole(batch_size, "batch_size", at_least=1)
        result = embed_files(self.keras_model, audio_paths(inputs, verbose), sample_rate=self.sample_rate,
                             window_samples=self.window_samples, batch_size=batch_size, verbose=verbose)
        return saved_embeddings(result, out, verbose)


def audio_paths(inputs, verbose: int) -> list:
    """The audio files of files, folders and patterns; the folders' notes on stderr when ``verbose``."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    expanded = expand_audio_paths(inputs)
    for note in expanded.notes if verbose else ():
        print(f"note: {note}", file=sys.stderr)
    return expanded.files


def saved_embeddings(result: dict, out: Optional[str], verbose: int) -> dict:
    """``result``, written to ``out`` first when given."""
    if out:
        write_embeddings(out, result)
        if verbose:
            print(f"wrote {len(result['files'])} embeddings of size {result['embeddings'].shape[1]} to {out}")
    return result


def predict(source, files, *, top_k: int = 3, batch_size: Optional[int] = None,
            hop_seconds: Optional[float] = None, min_confidence: Optional[float] = None, verbose: int = 1,
            labels_map=None, runtime: Optional[str] = None) -> list[dict]:
    """Classify files, folders and patterns with a preset, a run directory, an exported SavedModel version
    directory or a ``.tflite`` file (``None``: the default preset), in ``runtime`` (see
    :meth:`Classifier.from_preset`): ``genrenet.predict("musicnn-msd-gtzan", ["song.mp3", "album/"])``."""
    return Classifier.from_preset(source, runtime=runtime, verbose=verbose).predict(
        files, top_k=top_k, batch_size=batch_size, hop_seconds=hop_seconds, min_confidence=min_confidence,
        verbose=verbose, labels_map=labels_map)


def plot_timeline(source, file, *, title: Optional[str] = None):
    """The genre timeline of ``file`` as a matplotlib Figure, for any model source or a :class:`Classifier`."""
    return Classifier.from_preset(source).timeline(file, title=title)


def embed(source, files, out: Optional[str] = None, *, pretrained: Optional[str] = None, batch_size: int = 32,
          verbose: int = 1) -> dict:
    """Clip embeddings of ``files`` (files, folders, patterns) with any model source that has a Keras model (a
    run directory or a preset), or a registered architecture's name (with its ``pretrained`` weights tag)."""
    if isinstance(source, str) and is_registered(source):
        model, rate, window = registered_model(source, pretrained)
        result = embed_files(model, audio_paths(files, verbose), sample_rate=rate, window_samples=window,
                             batch_size=batch_size, verbose=verbose)
        return saved_embeddings(result, out, verbose)
    if pretrained:
        raise ConfigError(f"pretrained={pretrained!r} applies to a registered model name, not to {source}")
    return Classifier.from_preset(source, verbose=verbose).embed(files, out, batch_size=batch_size,
                                                                 verbose=verbose)


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registered architecture and no file or folder of that name exists."""
    return not os.path.lexists(name) and name in registry.list_models()
