"""Keras models as LiteRT (TFLite) files (:func:`tflite_model`, shared by ``export --tflite`` and ``predict
--runtime tflite``), float32 or quantised: ``float16`` (weights in float16), ``dynamic`` (weights in int8, each op's input
quantised on the fly) and ``int8`` (full-integer model body, calibrated on windows of real audio), each with the
log-mel front-end kept in float32.

Why the front-end stays float32: the power spectrum ``re² + im²`` spans ~10 decades (and overflows float16 for
loud audio), so an int8 or float16 front-end loses the quiet bands the log brings back. ``int8`` therefore
quantises every op except the front-end's (selective quantisation); ``dynamic`` keeps the front-end's mel
projection below the quantiser's weight-size threshold (:func:`~genrenet.nn.frontend.small_mel_blocks`);
``float16`` stores weights in float16 and computes in float32 on CPUs.

Batch normalisations need the same care in ``dynamic`` and ``int8``: one int8 scale per tensor (or per output
channel) resolves about two decades, and a normalisation's per-feature factors can span five (dead and barely
used features in a pretrained network). A normalisation right after a convolution or Dense hands its factors to
that layer's weights (:func:`equalized`), the others are computed in float32 where the converter would fold them
into the next layer's weights (:func:`wide_scale_norms`).

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
# int8 resolves about two decades: per-feature factors spanning more cannot share one scale (wide_scale_norms)
WIDE_SCALE = 100.0
ABSORBING = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "Dense")  # layers a following factor folds into
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
    weights float32) and ``int8`` (whose float32 front-end then stores fewer zeros) in small mel blocks, with
    every :func:`wide_scale_norms` layer kept out of the next layer's weights."""
    if mode not in ("dynamic", "int8"):
        yield
        return
    with small_mel_blocks(model, DYNAMIC_MIN_WEIGHTS), unfolded(wide_scale_norms(model)):
        yield


def wide_scale_norms(model) -> list:
    """The BatchNormalization layers of ``model`` that follow no convolution or Dense (which would absorb them)
    and whose per-feature factors γ/√(σ²+ε) span more than :data:`WIDE_SCALE` (dead features, whose factor is
    ~0, left out).

    The converter folds such a layer into the next Dense or convolution (its weights times the factors, column
    by column); int8 then gives each output one scale for columns that differ by up to ~10⁵, and the small
    columns round to zero. Computed on its own, in float32, the normalisation is exact and the next layer sees
    features of one size.
    """
    import keras

    wide = []
    for layer in getattr(model, "layers", []):
        if (isinstance(layer, keras.layers.BatchNormalization) and layer.scale
                and type(producer(layer)).__name__ not in ABSORBING):
            factor = np.abs(np.asarray(layer.gamma) / np.sqrt(np.asarray(layer.moving_variance) + layer.epsilon))
            live = factor[factor > factor.max() * 1e-9]
            if live.size and live.max() > WIDE_SCALE * live.min():
                wide.append(layer)
    return wide


@contextlib.contextmanager
def unfolded(layers: list):
    """Within the block, each of ``layers`` ends in an op the converter cannot see through, so that it is not
    folded into the weights of the layer after it (same numbers: the maximum with float32's lowest value)."""
    import tensorflow as tf

    def fenced(call):
        return lambda *args, **kwargs: tf.maximum(call(*args, **kwargs), np.finfo(np.float32).min)

    for layer in layers:
        object.__setattr__(layer, "call", fenced(layer.call))
    try:
        yield
    finally:
        for layer in layers:
            object.__delattr__(layer, "call")


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


def float_tensors(model, float_content: bytes) -> list:
    """Names of the float32 TFLite file's tensors that int8 leaves in float32: those computed by ``model``'s
    log-mel front-end(s) and by its :func:`wide_scale_norms`."""
    names = [l.name for l in iter_layers(model) if isinstance(l, LogMelSpectrogram)]
    names += [l.name for l in wide_scale_norms(model)]
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
        if quantize in ("dynamic", "int8"):
            lite = equalized(lite)
    except Exception as e:  # a custom layer that cannot be rebuilt unrolled or equalised
        raise ExportError(f"{name}: cannot be converted to TFLite (rebuilding it for conversion failed: "
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
                kept = float_tensors(lite, builtin_converter(tmp).convert())
                return selective_int8(converter, calibration, kept)
            return converter.convert()
        except Exception as e:
            raise ExportError(f"{name}: cannot be converted to TFLite with builtin ops only "
                              f"({converter_error(e)}); export without it",
                              param="quantize" if quantize else "tflite") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def converter_error(e: Exception) -> str:
    """The converter's first ``error:`` line of ``e`` (its messages run to pages of MLIR), at most 300 characters."""
    lines = [l for l in str(e).splitlines() if "error:" in l] or str(e).splitlines() or [type(e).__name__]
    return lines[0].strip()[:300]


def builtin_converter(saved_model: str):
    """A TFLite converter of the ``serve`` signature of ``saved_model``, TFLITE_BUILTINS only."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["serve"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def producer(layer):
    """The layer whose output is ``layer``'s single input in a functional model, or None (Keras keeps the graph
    in its nodes)."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
        return None
    return nodes[0].input_tensors[0]._keras_history.operation


def equalizable(model) -> list:
    """``(weighted layer, norm)`` name pairs of ``model``: a convolution or Dense with a bias and a ReLU (or no)
    activation whose one consumer is a BatchNormalization over its channels."""
    import keras

    pairs = []
    for norm in getattr(model, "layers", []):
        if not isinstance(norm, keras.layers.BatchNormalization) or not (norm.scale and norm.center):
            continue
        w = producer(norm)
        if (type(w).__name__ in ABSORBING and w.use_bias and len(w._outbound_nodes) == 1
                and getattr(w.activation, "__name__", "") in ("relu", "linear")
                and norm.axis in (-1, len(w.output.shape) - 1)):
            pairs.append((w.name, norm.name))
    return pairs


def equalized(model):
    """A copy of ``model`` (same function) in which every :func:`equalizable` layer carries its normalisation's
    per-channel factor |γ/√(σ²+ε)| in its own weights.

    ReLU(z)·s = ReLU(s·z) for s ≥ 0, so the factor moves in front of the ReLU into the weights, which int8
    quantises per output channel. The activations between the two layers then come out at one size instead of
    spanning the factors' decades (up to 10⁵ in musicnn), which one int8 scale per tensor cannot hold.
    """
    import keras

    pairs = equalizable(model)
    if not pairs:
        return model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for w_name, norm_name in pairs:
        w, norm = copy.get_layer(w_name), copy.get_layer(norm_name)
        kernel, bias = w.get_weights()
        gamma, beta, mean, var = norm.get_weights()
        factor = gamma / np.sqrt(var + norm.epsilon)
        scale = np.where(factor != 0, np.abs(factor), 1.0)
        w.set_weights([kernel * scale, bias * scale])
        # s·(x − μ) + β = sign(s)·(|s|·x − |s|·μ) + β; a variance of 1 − ε makes the factor γ' itself
        norm.set_weights([factor / scale, beta, mean * scale, np.full_like(var, 1.0 - norm.epsilon)])
    return copy
