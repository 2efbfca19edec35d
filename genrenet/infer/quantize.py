"""Keras models as LiteRT (TFLite) files (:func:`tflite_model`, shared by ``export --tflite`` and ``predict
--runtime tflite``), float32 or quantised: ``float16`` (weights in float16), ``dynamic`` (weights in int8, each op's input
quantised on the fly) and ``int8`` (full-integer model body, calibrated on windows of real audio), each with the
log-mel front-end kept in float32.

Why the front-end stays float32: the power spectrum ``re² + im²`` spans ~10 decades (and overflows float16 for
loud audio), so an int8 or float16 front-end loses the quiet bands the log brings back. ``int8`` therefore
quantises every op except the front-end's (selective quantisation); ``dynamic`` keeps the front-end's mel
projection below the quantiser's weight-size threshold (:func:`~genrenet.nn.frontend.small_mel_blocks`);
``float16`` stores weights in float16 and computes in float32 on CPUs.

Every file is measured against the float32 file on windows that calibration did not use: label agreement and
the largest probability difference go into the export's metadata and model card.
"""
from __future__ import annotations

import contextlib
import re
import shutil
import tempfile

import numpy as np

from ..data import load_dataset
from ..data.windows import window_dataset
from ..errors import ExportError
from .calibration import temper
from .source import tflite_interpreter
from ..nn.frontend import LogMelSpectrogram, iter_layers, small_mel_blocks

QUANTIZATIONS = ("float16", "dynamic", "int8")
# TFLite's dynamic-range quantiser leaves tensors with fewer weights than this in float32
DYNAMIC_MIN_WEIGHTS = 1024
CALIBRATION_WINDOWS = 100  # windows the int8 calibration runs (the LiteRT guide suggests ~100-500)
AGREEMENT_WINDOWS = 200  # held-out windows each quantised file is compared on
MAX_CLIPS = 80  # clips the windows are drawn from, spread over the dataset


def quantized_file(mode: str) -> str:
    """The file name of a quantised TFLite file in an export's version directory: ``model-int8.tflite``."""
    return f"model-{mode}.tflite"


def parse_quantize(value) -> list:
    """``"int8,float16"`` or a list → the modes in :data:`QUANTIZATIONS` order; unknown names are refused."""
    if not value:
        return []
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    unknown = [n for n in names if n not in QUANTIZATIONS]
    if unknown:
        raise ExportError(f"unknown quantisation {', '.join(unknown)}: choose from {', '.join(QUANTIZATIONS)}",
                          param="quantize")
    return [q for q in QUANTIZATIONS if q in names]


def audio_windows(spec: str, sample_rate: int, window_samples: int, seed: int = 0) -> tuple:
    """``(calibration [n, W], held_out [m, W])`` float32 windows of the data ``spec``: calibration from its
    ``train`` split when it has one, the held-out windows from the rest (or from windows calibration did not
    draw). Clips are spread over the dataset (at most :data:`MAX_CLIPS`)."""
    try:
        dataset = load_dataset(spec)
    except Exception as e:
        raise ExportError(f"calibration data {spec}: {e}", param="calibration_data") from None
    rng = np.random.default_rng(seed)
    train = dataset.split("train") if dataset.has_splits else []
    taken = {c.id for c in train}
    rest = [c for c in dataset.split("all") if c.id not in taken]
    calibration = clip_windows(spread(train, rng), sample_rate, window_samples, rng)
    held_out = clip_windows(spread(rest, rng), sample_rate, window_samples, rng)
    if not len(calibration) or not len(held_out):  # one side empty: split the windows there are
        both = np.concatenate([calibration, held_out])
        half = min(CALIBRATION_WINDOWS, len(both) // 2)
        calibration, held_out = both[:half], both[half:]
    if not len(calibration) or not len(held_out):
        raise ExportError(f"calibration data {spec}: too few usable windows of {window_samples} samples "
                          f"({len(calibration) + len(held_out)}; at least 2 are needed)", param="calibration_data")
    return calibration[:CALIBRATION_WINDOWS], held_out[:AGREEMENT_WINDOWS]


def spread(clips: list, rng) -> list:
    """At most :data:`MAX_CLIPS` of ``clips``, drawn without replacement, in their order."""
    if len(clips) <= MAX_CLIPS:
        return list(clips)
    return [clips[i] for i in sorted(rng.choice(len(clips), MAX_CLIPS, replace=False))]


def clip_windows(clips: list, sample_rate: int, window_samples: int, rng) -> np.ndarray:
    """Every window of ``clips`` (undecodable clips are skipped), shuffled."""
    batches = [np.asarray(w, np.float32) for w, _ in window_dataset(clips, sample_rate=sample_rate,
                                                                    window_samples=window_samples)]
    windows = np.concatenate(batches) if batches else np.zeros((0, window_samples), np.float32)
    return windows[rng.permutation(len(windows))]


@contextlib.contextmanager
def traced_for(model, mode: str):
    """The block in which a conversion for ``mode`` traces ``model``: for ``dynamic`` (which must leave the mel
    weights float32) and ``int8`` (whose float32 front-end then stores fewer zeros) in small mel blocks."""
    with small_mel_blocks(model, DYNAMIC_MIN_WEIGHTS) if mode in ("dynamic", "int8") else contextlib.nullcontext():
        yield


def configure(converter, mode: str, calibration=None):
    """Set ``converter`` up for ``mode`` (int8 also needs ``calibration`` windows [n, W])."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.representative_dataset = representative(calibration)
        # int8 kernels where they exist; the float front-end (denylisted) keeps its float builtins
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]


def representative(windows):
    """The converter's representative dataset: one window per sample, as the model's float32 input."""
    windows = np.asarray(windows, np.float32)
    return lambda: ([w[None]] for w in windows)


def frontend_tensors(model, float_content: bytes) -> list:
    """Names of the float32 TFLite file's tensors computed by ``model``'s log-mel front-end(s)."""
    names = [l.name for l in iter_layers(model) if isinstance(l, LogMelSpectrogram)]
    if not names:
        return []
    pattern = re.compile(r"(^|/)(" + "|".join(re.escape(n) for n in names) + r")(_\d+)?/")
    details = tflite_interpreter(content=float_content).get_tensor_details()
    return [t["name"] for t in details if pattern.search(t["name"])]


def selective_int8(converter, calibration, denylisted: list) -> bytes:
    """Full-integer quantisation of everything but the ``denylisted`` tensors (the front-end), which stay float32
    (LiteRT's selective quantisation)."""
    import tensorflow as tf

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denylisted)
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative(calibration),
                                                         debug_options=options)
    return debugger.get_nondebug_quantized_model()


def tflite_outputs(content: bytes, windows, num_threads: int = 2) -> np.ndarray:
    """A TFLite model's outputs on ``windows`` [n, W], in one call (the input resized to the batch)."""
    windows = np.asarray(windows, np.float32)
    it = tflite_interpreter(content=content, num_threads=num_threads)
    index = it.get_input_details()[0]["index"]
    it.resize_tensor_input(index, list(windows.shape))
    it.allocate_tensors()
    it.set_tensor(index, windows)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def agreement(float_content: bytes, content: bytes, windows) -> dict:
    """How closely ``content`` follows the float32 file on ``windows``: label agreement (share of windows whose
    top label is the same) and the largest absolute probability difference."""
    reference, got = tflite_outputs(float_content, windows), tflite_outputs(content, windows)
    return {"label_agreement": round(float(np.mean(reference.argmax(1) == got.argmax(1))), 4),
            "max_probability_difference": round(float(np.abs(reference - got).max()), 4),
            "windows": int(len(windows))}


def unrolled(model):
    """A copy of ``model`` (same weights) with every recurrent layer unrolled, for TFLite's builtin ops."""
    import keras

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.Bidirectional):
            config["layer"]["config"]["unroll"] = True
            if config.get("backward_layer"):
                config["backward_layer"]["config"]["unroll"] = True
        elif isinstance(layer, keras.layers.RNN):
            config["unroll"] = True
        return layer.__class__.from_config(config)

    if not any(isinstance(l, (keras.layers.RNN, keras.layers.Bidirectional)) for l in iter_layers(model)):
        return model
    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def tflite_model(model, window_samples: int, quantize: str | None = None, calibration=None,
                 temperature: float = 1.0) -> bytes:
    """Convert one window of ``model`` (waveform [batch, W] → probabilities tempered by ``temperature``) with
    TFLITE_BUILTINS only.

    ``quantize``: ``float16``, ``dynamic`` or ``int8`` (see above; int8 needs
    ``calibration`` windows [n, W]). Raises :class:`ExportError` naming the model and the first converter
    error when that is impossible.
    """
    import keras
    import tensorflow as tf

    name = getattr(model, "name", "model")
    try:
        lite = unrolled(model)
    except Exception as e:  # a custom recurrent layer that cannot be rebuilt unrolled
        raise ExportError(f"{name}: cannot be converted to TFLite (unrolling its recurrent layers failed: "
                          f"{type(e).__name__}: {e}); export without it", param="tflite") from None
    tmp = tempfile.mkdtemp(prefix="genrenet-tflite-")
    try:
        archive = keras.export.ExportArchive()
        archive.track(lite)
        with traced_for(lite, quantize):
            archive.add_endpoint("serve", lambda w: {"probabilities": temper(lite(w, training=False), temperature)
                                                     if temperature != 1.0 else lite(w, training=False)},
                                 input_signature=[tf.TensorSpec([None, window_samples], tf.float32,
                                                                name="waveform")])
            archive.write_out(tmp, verbose=False)
        # from_saved_model freezes the variables; from_concrete_functions leaves READ_VARIABLE ops behind
        converter = builtin_converter(tmp)
        if quantize:
            configure(converter, quantize, calibration)
        try:
            if quantize == "int8":
                front = frontend_tensors(lite, builtin_converter(tmp).convert())
                return selective_int8(converter, calibration, front)
            return converter.convert()
        except Exception as e:
            lines = [l for l in str(e).splitlines() if "error:" in l] or str(e).splitlines() or [type(e).__name__]
            raise ExportError(f"{name}: cannot be converted to TFLite with builtin ops only "
                              f"({lines[0].strip()[:300]}); export without it",
                              param="quantize" if quantize else "tflite") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def builtin_converter(saved_model: str):
    """A TFLite converter of the ``serve`` signature of ``saved_model``, TFLITE_BUILTINS only."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["serve"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter
