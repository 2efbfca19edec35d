"""``predict`` and clip embeddings at catalog scale on Apache Beam (DirectRunner/Prism locally, Dataflow, Flink,
Spark).

``patterns | ClassifyAudio(source)`` matches file patterns, decodes, resamples and windows every file on the
workers (genrenet's decoder and windows, as ``predict``), batches the windows of many files through
``RunInference`` with :class:`GenrenetModelHandler` (the model loaded once per worker process) and gives one
result per file: the mean of its windows' probabilities, with the fields of ``predict --json`` (``tags`` for a
multi-label source, the user's labels with a label map), or ``error``.
``patterns | EmbedAudio(source)`` is the same transform with the model's penultimate features in place of the
probabilities: one clip embedding per file (what ``genrenet index --runner`` builds an index from).
"""
from __future__ import annotations

import json
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from ..data import Clip, SkipLog, streamed_window_batches
from ..data.beamio import beam, local_file, match_pattern, pipeline_options
from .classifier import Classifier
from .embed import window_embeddings
from .predict import outputs_result, unclassified
from .tags import Outputs
from .windows import default_batch_size

METRICS = "genrenet"


class GenrenetModelHandler(ModelHandler[np.ndarray, PredictionResult, Callable]):
    """RunInference's model handler for any model source (a preset, a run directory, an exported SavedModel, a
    ``.tflite`` file): one :class:`~genrenet.infer.Classifier` per worker process, windows ``[W]`` in,
    probabilities ``[C]`` out, or the penultimate features with ``embeddings=True`` (runs and presets). Workers
    open the source as given (a preset is materialised where it runs)."""

    def __init__(self, source, max_batch_size: Optional[int] = None, embeddings: bool = False):
        super().__init__()
        clf = Classifier.from_preset(source)
        self.source, self.info, self.embeddings = clf.source, clf.info, embeddings
        self.labels, self.sample_rate, self.window_samples = clf.labels, clf.sample_rate, clf.window_samples
        self.min_confidence = clf.info.min_confidence
        self.max_batch_size = max_batch_size or default_batch_size(self.window_samples, self.sample_rate)

    def load_model(self) -> Callable:
        clf = Classifier.from_preset(self.source, verbose=0)
        return window_embeddings(clf.keras_model) if self.embeddings else clf.forward

    def run_inference(self, batch: Sequence[np.ndarray], model: Callable,
                      inference_args=None) -> Iterable[PredictionResult]:
        outputs = np.asarray(model(np.stack(batch).astype(np.float32, copy=False)), np.float64)
        return [PredictionResult(None, p) for p in outputs]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_size}

    def get_metrics_namespace(self) -> str:
        return METRICS


class MatchFiles(beam.DoFn):
    """Pattern → its files; a pattern matching nothing goes to the ``errors`` output with the reason."""

    def process(self, pattern):
        for path, reason in match_pattern(pattern):
            yield beam.pvalue.TaggedOutput("errors", (path, reason)) if reason else path


class WindowFile(beam.DoFn):
    """File → ``(file, window)`` for each of its windows (decoded block by block, as ``predict`` cuts them), or
    ``(file, reason)`` on the ``errors`` output. A file that fails part-way may have windows out already: its
    error wins when the file's windows are combined."""

    def __init__(self, sample_rate: int, window_samples: int):
        self.sample_rate, self.window_samples = sample_rate, window_samples

    def process(self, path):
        log = SkipLog()
        try:
            with local_file(path) as local:
                clip = Clip(id=path, label="", path=local)
                for windows, _ in streamed_window_batches([clip], sample_rate=self.sample_rate,
                                                          window_samples=self.window_samples, batch_size=64, log=log):
                    for window in windows:
                        yield path, window
        except Exception as e:  # a remote read that fails: never the end of the job
            log.skip(path, f"cannot read ({type(e).__name__}: {e})")
        for reason in log.skipped.values():
            yield beam.pvalue.TaggedOutput("errors", (path, reason))


class MeanProbabilities(beam.CombineFn):
    """A file's windows → ``(sum of probabilities, windows, error)``; any error makes the file an error."""

    def create_accumulator(self):
        return None, 0, None

    def add_input(self, acc, item):
        kind, value = item
        total, count, error = acc
        if kind == "error":
            return total, count, error or value
        return (value if total is None else total + value), count + 1, error

    def merge_accumulators(self, accumulators):
        total, count, error = None, 0, None
        for t, c, e in accumulators:
            total = t if total is None else (total if t is None else total + t)
            count, error = count + c, error or e
        return total, count, error

    def extract_output(self, acc):
        return acc


def _result(path, acc, outputs: Outputs, top_k: int, min_confidence: float) -> dict:
    total, count, error = acc
    if error or not count:
        return unclassified(path, error or "could not be decoded")
    return outputs_result(outputs, path, total / count, top_k, count, min_confidence)


class ClassifyAudio(beam.PTransform):
    """File patterns (paths, globs, local folders) → one ``predict --json`` dict per matched file: ``file``,
    ``label``, ``top``, ``probabilities``, ``windows`` (``tags`` and ``uncertain`` for a multi-label source), or
    ``file`` and ``error``. ``source``: any model source or a :class:`~genrenet.infer.Classifier` (``None``: the
    default preset); ``labels_map``: a label map file (:mod:`genrenet.infer.labelmap`)."""

    def __init__(self, source=None, top_k: int = 3, batch_size: Optional[int] = None, labels_map=None):
        super().__init__()
        self.handler = GenrenetModelHandler(source, max_batch_size=batch_size)
        self.outputs = Outputs.of(self.handler.info, labels_map)
        self.top_k = top_k

    def expand(self, patterns):
        outputs, top_k, threshold = self.outputs, self.top_k, self.handler.min_confidence
        return (patterns | "MeanPerFile" >> MeanOutputs(self.handler)
                | "Result" >> beam.MapTuple(lambda f, acc: _result(f, acc, outputs, top_k, threshold)))


class MeanOutputs(beam.PTransform):
    """File patterns → ``(file, (sum of its windows' model outputs, windows, error))`` per matched file: the
    steps :class:`ClassifyAudio` and :class:`EmbedAudio` share."""

    def __init__(self, handler: GenrenetModelHandler):
        super().__init__()
        self.handler = handler

    def expand(self, patterns):
        h = self.handler
        matched = patterns | "MatchFiles" >> beam.ParDo(MatchFiles()).with_outputs("errors", main="files")
        files = matched.files | "EachFileOnce" >> beam.Distinct()  # patterns may overlap; also spreads the files
        cut = files | "Window" >> beam.ParDo(WindowFile(h.sample_rate, h.window_samples)).with_outputs(
            "errors", main="windows")
        outputs = (cut.windows | "RunInference" >> RunInference(KeyedModelHandler(h))
                   | "Outputs" >> beam.MapTuple(lambda f, r: (f, ("probs", np.asarray(r.inference)))))
        errors = ((matched.errors, cut.errors) | "Errors" >> beam.Flatten()
                  | "ErrorItems" >> beam.MapTuple(lambda f, reason: (f, ("error", reason))))
        return (outputs, errors) | "PerFile" >> beam.Flatten() | "Mean" >> beam.CombinePerKey(MeanProbabilities())


def _embedding(path, acc) -> dict:
    total, count, error = acc
    if error or not count:
        return {"file": path, "error": error or "could not be decoded"}
    return {"file": path, "embedding": (total / count).tolist(), "windows": count}


class EmbedAudio(beam.PTransform):
    """File patterns → one dict per matched file: ``file``, ``embedding`` (the mean of its windows' penultimate
    features, as ``genrenet embed`` gives it) and ``windows``, or ``file`` and ``error``. ``source``: a run
    directory or a preset (exports hold no penultimate features)."""

    def __init__(self, source=None, batch_size: Optional[int] = None):
        super().__init__()
        self.handler = GenrenetModelHandler(source, max_batch_size=batch_size, embeddings=True)

    def expand(self, patterns):
        return patterns | "MeanPerFile" >> MeanOutputs(self.handler) | "Embedding" >> beam.MapTuple(_embedding)


def predict_pipeline(source, patterns, output: str, *, runner: str = "DirectRunner", beam_args=(),
                     top_k: int = 3, batch_size: Optional[int] = None, labels_map=None) -> dict:
    """Run :class:`ClassifyAudio` on ``patterns`` and write JSON Lines ``OUTPUT-SSSSS-of-NNNNN.jsonl``.
    Returns the counts of classified and failed files (from the pipeline's metrics)."""
    with beam.Pipeline(options=pipeline_options(runner, beam_args)) as p:
        (p | "Patterns" >> beam.Create([str(x) for x in patterns])
         | "Classify" >> ClassifyAudio(source, top_k=top_k, batch_size=batch_size, labels_map=labels_map)
         | "Count" >> beam.Map(_count)
         | "Json" >> beam.Map(json.dumps)
         | "Write" >> beam.io.WriteToText(output, file_name_suffix=".jsonl"))
    return _counts(p.result)


def _count(result: dict) -> dict:
    beam.metrics.Metrics.counter(METRICS, "results_error" if "error" in result else "results_ok").inc()
    return result


def _counts(result) -> dict:
    """``{"classified": n, "errors": n}`` from the pipeline's counters (zero when the runner reports none)."""
    from apache_beam.metrics.metric import MetricsFilter

    counters = result.metrics().query(MetricsFilter().with_namespace(METRICS))["counters"]
    totals = {}
    for c in counters:
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + (c.committed or c.attempted or 0)
    return {"classified": totals.get("results_ok", 0), "errors": totals.get("results_error", 0)}


def embed_pipeline(source, patterns, output: str, *, runner: str = "DirectRunner", beam_args=(),
                   batch_size: Optional[int] = None) -> list:
    """Run :class:`EmbedAudio` on ``patterns``, write JSON Lines shards ``OUTPUT-SSSSS-of-NNNNN.jsonl`` and
    return the shards' paths."""
    from apache_beam.io.filesystems import FileSystems

    with beam.Pipeline(options=pipeline_options(runner, beam_args)) as p:
        (p | "Patterns" >> beam.Create([str(x) for x in patterns])
         | "Embed" >> EmbedAudio(source, batch_size=batch_size)
         | "Json" >> beam.Map(json.dumps)
         | "Write" >> beam.io.WriteToText(output, file_name_suffix=".jsonl"))
    return sorted(m.path for m in FileSystems.match([f"{output}-*-of-*.jsonl"])[0].metadata_list)


def read_embedding_shards(shards) -> tuple:
    """``(files, embeddings [N, D], skipped [(file, reason)])`` from :func:`embed_pipeline`'s shards."""
    from apache_beam.io.filesystems import FileSystems

    files, rows, skipped = [], [], []
    for shard in shards:
        with FileSystems.open(shard) as f:
            for line in f.read().decode("utf-8").splitlines():
                row = json.loads(line)
                if "error" in row:
                    skipped.append((row["file"], row["error"]))
                else:
                    files.append(row["file"])
                    rows.append(row["embedding"])
    return files, np.asarray(rows, np.float32).reshape(len(files), -1), skipped
