"""``predict``: audio files of any format, length and rate → top-k genres, from a run directory, an exported
SavedModel version directory or a ``.tflite`` file.

Every source goes through the same streaming loop: files are decoded (soundfile) and resampled (soxr) in a
tf.data pipeline, cut into windows, and the windows of *many files* are batched together for the model; a
file's prediction is the mean of its windows' probabilities. Memory does not grow with the number of files.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from typing import Optional

import numpy as np

from .data import Clip, SkipLog
from .runs import Run, is_run_dir

# Files longer than this are decoded block by block, so memory does not grow with their length.
STREAM_SECONDS = 600.0


def _seconds(path) -> float:
    """Duration from the header (0 when unreadable: the decoder then reports why)."""
    import soundfile as sf

    from .data.audio import unusable_path

    if unusable_path(path):  # never open a FIFO or device just to read a header: it may block forever
        return 0.0
    try:
        info = sf.info(os.fsencode(path))
        return info.frames / info.samplerate if info.samplerate > 0 else 0.0
    except Exception:
        return 0.0


class Progress:
    """A one-line progress bar over files on stderr when it is a terminal (stdout stays clean for ``--json``)."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 1 and (stream is not None or self.stream.isatty())

    def update(self, done: int):
        """Show ``done`` files finished."""
        if not self.enabled or done == self.done:
            return
        self.done = done
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        filled = int(30 * done / self.total)
        self.stream.write(f"\rpredict [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} files "
                          f"({rate:.1f} files/s)")
        self.stream.flush()

    def close(self):
        """Finish the bar at 100 % and end its line."""
        if self.enabled:
            self.update(self.total)
            self.stream.write("\n")
            self.stream.flush()


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


class Predictor:
    """Loads a run directory, an exported SavedModel version directory or a ``.tflite`` file once, then
    classifies files. ``forward(windows [n, W] float32) -> probabilities [n, C]`` is the model on windows."""

    def __init__(self, source: str):
        self.source = source = os.fspath(source)
        if is_run_dir(source):
            from .evaluation import inference_function

            run = Run(source)
            self.kind, self.labels = "run", run.labels
            self.sample_rate, self.window_samples = run.sample_rate, run.window_samples
            self.model = run.load_model()
            call = inference_function(self.model, fused=False)
            self.forward = lambda w: call(w).numpy()
        elif os.path.isfile(os.path.join(source, "saved_model.pb")):
            import tensorflow as tf

            from .export import load_export_meta

            meta = load_export_meta(source)
            self.kind, self.labels = "savedmodel", meta["labels"]
            self.sample_rate, self.window_samples = meta["sample_rate"], meta["window_samples"]
            self.model = tf.saved_model.load(source)
            signature = self.model.signatures["serving_default"]
            # one window per row: serving_default's mean over a row's windows is that window's probabilities
            self.forward = lambda w: signature(waveform=w)["probabilities"].numpy()
        elif os.path.isfile(source) and source.endswith(".tflite"):
            meta_path = tflite_meta_path(source)
            if meta_path is None:
                raise FileNotFoundError(f"{source}: no metadata beside it (expected {os.path.splitext(source)[0]}"
                                        ".json or assets/genrenet.json in its folder, as `genrenet export "
                                        "--tflite` writes them)")
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
            self.kind, self.labels = "tflite", meta["labels"]
            self.sample_rate, self.window_samples = meta["sample_rate"], meta["window_samples"]
            self.model = _tflite_interpreter(source)
            self.forward = self._tflite_forward
            self._batch = None
        else:
            raise FileNotFoundError(f"{source}: neither a genrenet run directory, an exported SavedModel nor a "
                                    ".tflite file (expected model.keras + config.json, saved_model.pb, or "
                                    "FILE.tflite)")

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

    def predict_files(self, files, *, top_k: int = 3, batch_size: Optional[int] = None,
                      verbose: int = 1) -> list[dict]:
        """One dict per file: ``file``, ``label``, ``top`` [[label, p]], ``probabilities``, ``windows``, or
        ``file`` and ``error``. Windows of consecutive files share batches of ``batch_size`` (default: 64 windows
        of 3 s, fewer when windows are longer; see :func:`~genrenet.evaluation.default_batch_size`)."""
        from .data import window_dataset
        from .data.pipeline import streamed_window_batches
        from .evaluation import default_batch_size, inference_function, worth_fusing

        files = [str(f) for f in files]
        batch_size = batch_size or default_batch_size(self.window_samples, self.sample_rate)
        top_k = max(1, min(top_k, len(self.labels)))
        clips = [Clip(id=f, label="", path=f) for f in files]
        log = SkipLog()
        sums = np.zeros((len(clips), len(self.labels)), np.float64)
        counts = np.zeros(len(clips), np.int64)
        if any(_seconds(f) > STREAM_SECONDS for f in files):  # hours of audio: decode block by block
            ds = streamed_window_batches(clips, sample_rate=self.sample_rate, window_samples=self.window_samples,
                                         batch_size=batch_size, log=log)
        else:  # parallel decode in tf.data: faster for ordinary songs
            ds = window_dataset(clips, sample_rate=self.sample_rate, window_samples=self.window_samples,
                                batch_size=batch_size, log=log)
        forward = self.forward
        if self.kind == "run" and worth_fusing(len(clips)):  # many files: worth XLA's compile time
            fused = inference_function(self.model)
            forward = lambda w: fused(w).numpy()  # noqa: E731
        bar = Progress(len(clips), enabled=bool(verbose))
        for windows, index in ds:
            probs = np.asarray(forward(windows), np.float64)
            index = np.asarray(index)
            np.add.at(sums, index, probs)
            np.add.at(counts, index, 1)
            bar.update(int(index.max()))  # files before the last one in the batch are complete
        bar.close()
        out = []
        for clip, total, n in zip(clips, sums, counts):
            if n == 0 or clip.name in log.skipped:  # a streamed file can fail after some windows
                out.append({"file": clip.path, "error": log.skipped.get(clip.name, "could not be decoded")})
            else:
                out.append(self._result(clip.path, total / n, top_k, n))
        return out

    def _result(self, path, probs, top_k, windows):
        order = np.argsort(-probs)[:top_k]
        return {"file": str(path), "label": self.labels[order[0]], "windows": int(windows),
                "top": [[self.labels[i], float(probs[i])] for i in order],
                "probabilities": {l: float(p) for l, p in zip(self.labels, probs)}}


def predict(source: str, files, *, top_k: int = 3, batch_size: Optional[int] = None,
            verbose: int = 1) -> list[dict]:
    """Classify ``files`` with a run directory, an exported SavedModel version directory or a ``.tflite`` file."""
    return Predictor(source).predict_files(list(files), top_k=top_k, batch_size=batch_size, verbose=verbose)
