"""A run's (or preset's) model body as a LiteRT file for ``predict --runtime tflite``: converted once and kept in
genrenet's cache, ``<cache root>/litert/``, under a fingerprint of the model file and its calibration, so a
retrained run never reuses a stale file.

What runs where, as measured on a 2-core AVX-512 CPU (``python -m benchmarks.predict --runtimes``, see the
benchmarks page): the log-mel front-end stays in TensorFlow (XLA-fused for large jobs, as Keras runs it), and
only the model *body* (log-mel in, probabilities out) runs in LiteRT. A whole-model LiteRT file runs its
front-end (RFFT, framing, mel matmuls in float32) in TFLite's builtin kernels, which XNNPACK does not take:
that front-end alone cost ~3× TensorFlow's and ate the int8 body's gain. A model whose front-end is not its
first layer (nothing else sees the waveform) is converted whole, as ``export --tflite`` converts it.

The body is full int8 (XNNPACK's int8 kernels, ~4× the Keras float32 body for ``cnn``), calibrated on windows
of the run's own training data, when it keeps the label of at least :data:`MIN_AGREEMENT` of held-out windows
of that data; else (it changes labels, or the data cannot be read, as for a preset) float32. ``auto`` runs LiteRT
only for the architectures where that measured faster than Keras (:data:`LITERT_FASTER`), and Keras otherwise.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
from typing import Optional

import numpy as np

from ..data.cache import cache_root
from ..errors import ConfigError, ExportError
from ..run import Run, atomic_path
from .source import ModelSource

RUNTIMES = ("auto", "keras", "tflite")
MIN_AGREEMENT = 0.95  # share of held-out windows whose label the int8 file must keep
LITERT_FASTER = ("cnn", "crnn_attention")  # architectures whose LiteRT body measured faster than Keras here
ALLOWED = {"savedmodel": ("auto",), "tflite": ("auto", "tflite")}  # exports keep their own runtime
FORMAT = 2  # bump when the conversion changes, so that older cached files are rebuilt


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


def litert_files() -> list:
    """The converted files in :func:`litert_dir` (and the facts beside them): what ``genrenet cache`` counts."""
    import glob

    return sorted(glob.glob(os.path.join(litert_dir(), "*.tflite")) +
                  glob.glob(os.path.join(litert_dir(), "*.facts.json")))


def clear_litert() -> tuple:
    """Remove every converted file (other files are left alone): ``(files removed, bytes freed)``. A predict
    running meanwhile converts again what it no longer finds."""
    removed = freed = 0
    for path in litert_files():
        try:
            size = os.path.getsize(path)
            os.remove(path)
        except FileNotFoundError:  # removed meanwhile by another process
            continue
        removed, freed = removed + 1, freed + size
    return removed, freed


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
    """``(content, facts)``: the model body's file (or the whole model's, see the module), int8 when it keeps
    labels, else float32; ``facts["input"]`` says what the file reads: ``log-mel`` or ``waveform``."""
    from .quantize import agreement, audio_windows, tflite_model

    run = Run(info.path)
    model, window, t = run.load_model(), info.window_samples, info.temperature
    split = split_frontend(model)
    if split:
        frontend, body = split
        convert = functools.partial(body_tflite, body)
        features = functools.partial(frontend_outputs, frontend)
    else:
        convert = functools.partial(tflite_model, model, window, temperature=t)
        features = functools.partial(np.asarray, dtype=np.float32)
    base = {"input": "log-mel" if split else "waveform"}
    float_content = convert()
    try:
        calibration, held_out = audio_windows(run.data_spec or "", info.sample_rate, window)
    except ExportError as e:
        return float_content, dict(base, precision="float32", why=f"no calibration data for int8: {e.message}")
    int8 = convert("int8", features(calibration))
    measured = agreement(float_content, int8, features(held_out))
    facts = dict(base, label_agreement=measured["label_agreement"], windows=measured["windows"])
    share = f"int8 keeps the label of {100 * measured['label_agreement']:.1f}% of {measured['windows']} " \
            f"held-out windows"
    if measured["label_agreement"] >= MIN_AGREEMENT:
        return int8, dict(facts, precision="int8", why=share)
    return float_content, dict(facts, precision="float32", why=f"{share}, below {100 * MIN_AGREEMENT:.0f}%")


def split_frontend(model) -> Optional[tuple]:
    """``(front-end layer, body model)`` when ``model``'s log-mel front-end is a top-level layer and the only one
    reading the waveform (the body then maps log-mel to the model's outputs); None otherwise."""
    import keras

    from ..nn.frontend import LogMelSpectrogram

    frontends = [layer for layer in getattr(model, "layers", ()) if isinstance(layer, LogMelSpectrogram)]
    if len(frontends) != 1 or len(getattr(model, "inputs", None) or ()) != 1:
        return None
    frontend = frontends[0]
    try:
        if frontend.input is not model.inputs[0]:
            return None
        return frontend, keras.Model(frontend.output, model.output, name=f"{model.name}_body")
    except (ValueError, AttributeError):  # called more than once, or other layers read the waveform too
        return None


def frontend_outputs(frontend, windows, batch: int = 64) -> np.ndarray:
    """The front-end's log-mel of ``windows`` [n, W] (float32), computed ``batch`` windows at a time."""
    windows = np.asarray(windows, np.float32)
    return np.concatenate([np.asarray(frontend(windows[i:i + batch])) for i in range(0, len(windows), batch)])


def body_tflite(body, quantize: Optional[str] = None, calibration=None) -> bytes:
    """A model body (log-mel in → probabilities out) as a TFLite file with builtin ops: float32, or ``int8``
    (full-integer, calibrated on ``calibration`` log-mel inputs, float32 in and out)."""
    import keras
    import tensorflow as tf

    from .quantize import builtin_converter, configure, converter_error, unrolled

    tmp = tempfile.mkdtemp(prefix="genrenet-litert-")
    try:
        lite = unrolled(body)
        archive = keras.export.ExportArchive()
        archive.track(lite)
        archive.add_endpoint("serve", lambda x: {"probabilities": lite(x, training=False)},
                             input_signature=[tf.TensorSpec([None, *body.input_shape[1:]], tf.float32,
                                                            name="log_mel")])
        archive.write_out(tmp, verbose=False)
        converter = builtin_converter(tmp)
        if quantize:
            configure(converter, quantize, calibration)
        return converter.convert()
    except Exception as e:
        raise ExportError(f"{body.name}: cannot be converted to LiteRT ({converter_error(e)}); "
                          f"use --runtime keras", param="runtime") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def litert_file(info: ModelSource, runtime: Optional[str], verbose: int = 1) -> Optional[tuple]:
    """``(path, facts)`` of the LiteRT file to run for a run or preset when ``runtime`` resolves to ``tflite``
    (else None)."""
    if info.kind in ("run", "preset") and resolved_runtime(info, runtime) == "tflite":
        return cached_litert(info, verbose)
    return None
