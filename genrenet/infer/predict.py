"""``predict``: audio files of any format, length and rate → top-k genres, from a run directory, an exported
SavedModel version directory, a ``.tflite`` file or a preset (:mod:`genrenet.presets`).

Every source goes through genrenet's one inference loop (:mod:`genrenet.infer.windows`): files are decoded
and resampled in a tf.data pipeline, cut into windows, and the windows of *many files* are batched together for
the model; a file's prediction is the mean of its windows' probabilities.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Optional

import numpy as np

from ..data import Clip, SkipLog
from ..presets import is_preset, list_presets, resolve
from ..run import Run, is_run_dir
from .source import load_export_meta
from .tflite_metadata import read_metadata
from .windows import Progress, clip_outputs, default_batch_size, model_forward, worth_fusing


def _tflite_interpreter(path: str, num_threads: int | None = None):
    try:  # LiteRT is the maintained home of the interpreter; tf.lite.Interpreter still works in TF 2.21
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_path=path, num_threads=num_threads or min(4, os.cpu_count() or 1))


def tflite_meta_path(path: str) -> str | None:
    """The metadata of a ``.tflite`` file: ``<file>.json`` beside it, else its version dir's assets/genrenet.json."""
    for candidate in (os.path.splitext(path)[0] + ".json",
                      os.path.join(os.path.dirname(os.path.abspath(path)), "assets", "genrenet.json")):
        if os.path.isfile(candidate):
            return candidate
    return None


def tflite_meta(path: str) -> dict:
    """``labels``, ``sample_rate`` and ``window_samples`` of a ``.tflite`` file: from the JSON beside it
    (:func:`tflite_meta_path`), else from the TFLite Model Metadata inside it (as ``export --tflite`` writes it;
    the window is then the model's input length)."""
    meta_path = tflite_meta_path(path)
    if meta_path is not None:
        with open(meta_path, encoding="utf-8") as f:
            return json.load(f)
    with open(path, "rb") as f:
        content = f.read()
    try:
        embedded = read_metadata(content)
    except ValueError:
        embedded = {}
    if not embedded.get("labels") or not embedded.get("sample_rate"):
        raise FileNotFoundError(f"{path}: no labels or sample rate, neither in the file's TFLite Model Metadata "
                                f"nor beside it (expected {os.path.splitext(path)[0]}.json or assets/genrenet.json "
                                "in its folder, as `genrenet export --tflite` writes them)")
    window_samples = int(_tflite_interpreter(path).get_input_details()[0]["shape"][-1])
    return {"labels": embedded["labels"], "sample_rate": embedded["sample_rate"], "window_samples": window_samples}


def source_meta(source: str) -> dict:
    """``kind``, ``labels``, ``sample_rate`` and ``window_samples`` of a run directory, an exported SavedModel
    version directory or a ``.tflite`` file, read from its metadata without loading the model."""
    source = os.fspath(source)
    if is_run_dir(source):
        run = Run(source)
        return {"kind": "run", "labels": run.labels, "sample_rate": run.sample_rate,
                "window_samples": run.window_samples}
    if os.path.isfile(os.path.join(source, "saved_model.pb")):
        meta = load_export_meta(source)
        kind = "savedmodel"
    elif os.path.isfile(source) and source.endswith(".tflite"):
        meta = tflite_meta(source)
        kind = "tflite"
    else:
        raise FileNotFoundError(f"{source}: neither a genrenet run directory, an exported SavedModel, a "
                                ".tflite file nor a preset (expected model.keras + config.json, saved_model.pb, "
                                f"FILE.tflite, or one of the presets: {', '.join(list_presets())})")
    return {"kind": kind, "labels": meta["labels"], "sample_rate": meta["sample_rate"],
            "window_samples": meta["window_samples"]}


def is_model_source(path) -> bool:
    """Whether ``path`` is something :class:`Predictor` opens: a run directory, an exported SavedModel version
    directory, a ``.tflite`` file or a preset name."""
    path = os.fspath(path)
    return (is_run_dir(path) or os.path.isfile(os.path.join(path, "saved_model.pb"))
            or (os.path.isfile(path) and path.endswith(".tflite")) or (is_preset(path) and not os.path.exists(path)))


class Predictor:
    """Loads a run directory, an exported SavedModel version directory, a ``.tflite`` file or a preset once,
    then classifies files. ``forward(windows [n, W] float32) -> probabilities [n, C]`` is the model on windows."""

    def __init__(self, source: str):
        self.source = os.fspath(source)
        source = resolve(self.source)
        meta = source_meta(source)
        self.kind, self.labels = meta["kind"], meta["labels"]
        self.sample_rate, self.window_samples = meta["sample_rate"], meta["window_samples"]
        if self.kind == "run":
            self.model = Run(source).load_model()
            self.forward = model_forward(self.model, num_clips=1)
        elif self.kind == "savedmodel":
            import tensorflow as tf

            self.model = tf.saved_model.load(source)
            signature = self.model.signatures["serving_default"]
            # one window per row: serving_default's mean over a row's windows is that window's probabilities
            self.forward = lambda w: signature(waveform=w)["probabilities"].numpy()
        else:
            self.model = _tflite_interpreter(source)
            self.forward = self._tflite_forward
            self._batch = None

    def _tflite_forward(self, windows):
        windows = np.asarray(windows, np.float32)
        it = self.model
        inp = it.get_input_details()[0]
        if self._batch != len(windows):
            it.resize_tensor_input(inp["index"], list(windows.shape))
            it.allocate_tensors()
            self._batch = len(windows)
        it.set_tensor(inp["index"], windows)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"]).copy()

    def forward_for(self, num_clips: int):
        """The model on windows for a job of ``num_clips`` clips (a run's model fused when that pays off)."""
        return model_forward(self.model, num_clips) if self.kind == "run" and worth_fusing(num_clips) else self.forward

    def predict_files(self, files, *, top_k: int = 3, batch_size: Optional[int] = None,
                      hop_seconds: Optional[float] = None, verbose: int = 1) -> list[dict]:
        """One dict per file: ``file``, ``label``, ``top`` [[label, p]], ``probabilities``, ``windows``, or
        ``file`` and ``error``. Windows of consecutive files share batches of ``batch_size`` (default: 64 windows
        of 3 s, fewer when windows are longer; see :func:`~genrenet.infer.windows.default_batch_size`);
        ``hop_seconds`` spaces the windows (default: one window, no overlap)."""
        files = [str(f) for f in files]
        top_k = max(1, min(top_k, len(self.labels)))
        clips = [Clip(id=f, label="", path=f) for f in files]
        log = SkipLog()
        progress = Progress(len(clips), enabled=bool(verbose))
        out = clip_outputs(self.forward_for(len(clips)), clips, num_outputs=len(self.labels),
                           sample_rate=self.sample_rate, window_samples=self.window_samples,
                           hop_samples=int(round(hop_seconds * self.sample_rate)) if hop_seconds else None,
                           batch_size=batch_size or default_batch_size(self.window_samples, self.sample_rate),
                           log=log, progress=progress)
        progress.close()
        return [self._result(clip.path, probs, top_k, n) if n else
                {"file": clip.path, "error": log.skipped.get(clip.name, "could not be decoded")}
                for clip, probs, n in zip(clips, out.mean, out.counts)]

    def _result(self, path, probs, top_k, windows):
        return file_result(path, probs, self.labels, top_k, windows)


def file_result(path, probs, labels, top_k: int, windows: int) -> dict:
    """The result of one classified file: ``file``, ``label``, ``windows``, ``top`` [[label, p]] (``top_k``
    best) and every label's ``probabilities``."""
    order = np.argsort(-probs)[:max(1, min(top_k, len(labels)))]
    return {"file": str(path), "label": labels[order[0]], "windows": int(windows),
            "top": [[labels[i], float(probs[i])] for i in order],
            "probabilities": {l: float(p) for l, p in zip(labels, probs)}}


def predict(source: str, files, *, top_k: int = 3, batch_size: Optional[int] = None,
            hop_seconds: Optional[float] = None, verbose: int = 1) -> list[dict]:
    """Classify ``files`` with a run directory, an exported SavedModel version directory, a ``.tflite`` file or
    a preset name (``genrenet.predict("musicnn-msd-gtzan", ["song.mp3"])``)."""
    return Predictor(source).predict_files(list(files), top_k=top_k, batch_size=batch_size,
                                           hop_seconds=hop_seconds, verbose=verbose)
