"""``predict``: audio files of any format, length and rate → top-k genres, from a run dir or a SavedModel."""
from __future__ import annotations

import os

import numpy as np

from .data import AudioError, Clip, SkipLog, load_audio
from .runs import Run, is_run_dir


class Predictor:
    """Loads a run directory or an exported SavedModel version directory once, then classifies files."""

    def __init__(self, source: str):
        self.source = source
        if is_run_dir(source):
            run = Run(source)
            self.kind, self.labels = "run", run.labels
            self.sample_rate, self.window_samples = run.sample_rate, run.window_samples
            self.model = run.load_model()
        elif os.path.isfile(os.path.join(source, "saved_model.pb")):
            import tensorflow as tf

            from .export import load_export_meta

            meta = load_export_meta(source)
            self.kind, self.labels = "savedmodel", meta["labels"]
            self.sample_rate, self.window_samples = meta["sample_rate"], meta["window_samples"]
            self.model = tf.saved_model.load(source).signatures["serving_default"]
        else:
            raise FileNotFoundError(f"{source}: neither a genrenet run directory nor an exported SavedModel "
                                    "(expected model.keras + config.json, or saved_model.pb)")

    def predict_files(self, files, *, top_k: int = 3, batch_size: int = 32, verbose: int = 1) -> list[dict]:
        """One dict per file: ``file``, ``label``, ``top`` [(label, p)], ``probabilities``, or ``error``."""
        top_k = max(1, min(top_k, len(self.labels)))
        if self.kind == "run":
            return self._predict_run(files, top_k, batch_size, verbose)
        return [self._predict_savedmodel(f, top_k) for f in files]

    def _result(self, path, probs, top_k, windows):
        order = np.argsort(-probs)[:top_k]
        return {"file": str(path), "label": self.labels[order[0]], "windows": int(windows),
                "top": [[self.labels[i], float(probs[i])] for i in order],
                "probabilities": {l: float(p) for l, p in zip(self.labels, probs)}}

    def _predict_run(self, files, top_k, batch_size, verbose):
        from .evaluation import predict_clips

        clips = [Clip(id=str(f), label="", path=str(f)) for f in files]
        log = SkipLog()
        mean, _, counts = predict_clips(self.model, clips, sample_rate=self.sample_rate,
                                        window_samples=self.window_samples, batch_size=batch_size, log=log,
                                        verbose=verbose if len(clips) > 1 else 0, stream=True)
        out = []
        for clip, probs, n in zip(clips, mean, counts):
            if n == 0:
                out.append({"file": clip.path, "error": log.skipped.get(clip.path, "could not be decoded")})
            else:
                out.append(self._result(clip.path, probs, top_k, n))
        return out

    def _predict_savedmodel(self, path, top_k):
        import tensorflow as tf

        try:
            audio = load_audio(path, self.sample_rate)
        except AudioError as e:
            return {"file": str(path), "error": e.reason}
        result = self.model(waveform=tf.constant(audio[None, :]))
        probs = result["probabilities"].numpy()[0]
        return self._result(path, probs, top_k, max(1, len(audio) // self.window_samples))


def predict(source: str, files, *, top_k: int = 3, batch_size: int = 32, verbose: int = 1) -> list[dict]:
    """Classify ``files`` with a run directory or an exported SavedModel version directory."""
    return Predictor(source).predict_files(list(files), top_k=top_k, batch_size=batch_size, verbose=verbose)
