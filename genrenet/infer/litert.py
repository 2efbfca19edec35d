"""A run's (or preset's) Keras model as a LiteRT file for ``predict --runtime tflite``: converted once (calibration
included, as ``export --tflite`` converts it) and kept in genrenet's cache, ``<cache root>/litert/``, under a
fingerprint of the model file and its calibration, so a retrained run never reuses a stale file.

Which precision, as measured on a 2-core AVX-512 CPU (``python -m benchmarks.predict --runtimes``, see the
benchmarks page): full int8 is the fastest LiteRT file for ``cnn``, ``crnn_attention`` and ``lstm``; dynamic-range
int8 comes second; float16 weights are no faster than float32 (a CPU computes them in float32). So the file is the
int8 one, calibrated on windows of the run's own training data, when it keeps the label of at least
:data:`MIN_AGREEMENT` of held-out windows of that data; else (it changes labels, or the data cannot be read, as for
a preset) the float32 one. ``auto`` runs LiteRT only for the architectures where that measured faster than Keras
(:data:`LITERT_FASTER`), and Keras otherwise.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Optional

from ..data.cache import cache_root
from ..errors import ConfigError, ExportError
from ..run import Run, atomic_path
from .source import ModelSource

RUNTIMES = ("auto", "keras", "tflite")
MIN_AGREEMENT = 0.95  # share of held-out windows whose label the int8 file must keep
LITERT_FASTER = ("cnn",)  # architectures whose int8 LiteRT file measured faster than Keras on the benchmark CPU
ALLOWED = {"savedmodel": ("auto",), "tflite": ("auto", "tflite")}  # exports keep their own runtime
FORMAT = 1  # bump when the conversion changes, so that older cached files are rebuilt


def check_runtime(runtime: Optional[str], kind: str) -> Optional[str]:
    """``runtime`` when it is None (the source's default), one of :data:`RUNTIMES` and fits a source of ``kind``
    (an export keeps its own runtime); a :class:`~genrenet.errors.ConfigError` naming the parameter otherwise."""
    if runtime is None:
        return None
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}: choose from {', '.join(RUNTIMES)}", param="runtime")
    if runtime not in ALLOWED.get(kind, RUNTIMES):
        what = "a .tflite file" if kind == "tflite" else f"a {kind}"
        raise ConfigError(f"runtime {runtime!r} does not apply to {what}, which runs as it was exported "
                          f"(choose {' or '.join(ALLOWED[kind])}, or give a run directory or a preset)",
                          param="runtime")
    return runtime


def resolved_runtime(info: ModelSource, runtime: Optional[str] = None) -> str:
    """What ``runtime`` means for this source: ``keras`` (also for None) or ``tflite`` for a run or a preset
    (``auto``: ``tflite`` for :data:`LITERT_FASTER` architectures), the export's own (``savedmodel``, ``tflite``)
    otherwise."""
    check_runtime(runtime, info.kind)
    if info.kind not in ("run", "preset"):
        return info.kind
    if runtime == "auto":
        return "tflite" if info.model_name in LITERT_FASTER else "keras"
    return runtime or "keras"


def fingerprint(info: ModelSource) -> str:
    """A digest of the model file, its calibration temperature and the conversion format."""
    digest = hashlib.sha256()
    with open(Run(info.path).file("model.keras"), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest.update(json.dumps([FORMAT, info.temperature]).encode())
    return digest.hexdigest()[:32]


def litert_dir() -> str:
    """Where converted files live: ``<cache root>/litert``."""
    return os.path.join(cache_root(), "litert")


def cached_litert(info: ModelSource, verbose: int = 1) -> tuple:
    """``(path, facts)`` of the source's LiteRT file, converted on first use; ``facts`` (also in the JSON beside
    the file) say its precision and, for int8, the label agreement measured with the float model."""
    path = os.path.join(litert_dir(), fingerprint(info) + ".tflite")
    facts_path = os.path.splitext(path)[0] + ".facts.json"  # not <stem>.json: that would read as metadata
    if os.path.isfile(path) and os.path.isfile(facts_path):
        with open(facts_path, encoding="utf-8") as f:
            return path, json.load(f)
    content, facts = converted(info)
    os.makedirs(litert_dir(), exist_ok=True)
    with atomic_path(facts_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(dict(facts, source=str(info.source)), f, indent=2)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(content)
    if verbose:
        print(f"note: {info.source} converted to a LiteRT {facts['precision']} file ({facts['why']}), "
              f"cached as {path}", file=sys.stderr)
    return path, facts


def converted(info: ModelSource) -> tuple:
    """``(content, facts)``: the int8 file when it keeps labels (see the module), else the float32 one."""
    from .quantize import agreement, audio_windows, tflite_model

    run = Run(info.path)
    model, window, t = run.load_model(), info.window_samples, info.temperature
    float_content = tflite_model(model, window, temperature=t)
    try:
        calibration, held_out = audio_windows(run.data_spec or "", info.sample_rate, window)
    except ExportError as e:
        return float_content, {"precision": "float32", "why": f"no calibration data for int8: {e.message}"}
    int8 = tflite_model(model, window, "int8", calibration, temperature=t)
    measured = agreement(float_content, int8, held_out)
    facts = {"label_agreement": measured["label_agreement"], "windows": measured["windows"]}
    share = f"int8 keeps the label of {100 * measured['label_agreement']:.1f}% of {measured['windows']} " \
            f"held-out windows"
    if measured["label_agreement"] >= MIN_AGREEMENT:
        return int8, dict(facts, precision="int8", why=share)
    return float_content, dict(facts, precision="float32", why=f"{share}, below {100 * MIN_AGREEMENT:.0f}%")


def litert_path(info: ModelSource, runtime: Optional[str], verbose: int = 1) -> Optional[str]:
    """The LiteRT file to run for a run or preset when ``runtime`` resolves to ``tflite`` (else None)."""
    if info.kind in ("run", "preset") and resolved_runtime(info, runtime) == "tflite":
        return cached_litert(info, verbose)[0]
    return None
