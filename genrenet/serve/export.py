"""``export``: a run → a SavedModel in TF Serving layout ``DIR/<name>/<version>/`` (core TF ops only).

Signatures:

* ``serving_default``: ``waveform`` float32 [batch, samples] at the model's rate, of any length: the graph cuts
  every row into windows, runs the model on all of them and averages their probabilities per example.
* ``classify_wav``: ``wav_bytes`` string [batch] of whole 16-bit PCM WAV files (any rate, mono or stereo,
  different lengths): decoded with ``tf.audio.decode_wav``, mixed to mono, resampled in the graph
  (:mod:`genrenet.nn.wav`), then windowed like ``serving_default``; each example averages only its own
  windows. Malformed bytes raise InvalidArgument.

Both return ``probabilities`` float32 [batch, C] (calibrated: the run's temperature is part of the graph),
``label_id`` int64 [batch], ``label`` string [batch]; a multi-label run with per-tag thresholds
(``thresholds.json``) also returns ``tags`` string [batch, C]: the tags whose probability is at least their
threshold, highest first, then empty strings. A waveform with NaN or infinite samples or without samples, and
bytes that are not a WAV file, raise InvalidArgument.

With ``tflite=True`` the version directory also holds ``model.tflite`` (TFLITE_BUILTINS only; input
``waveform`` float32 [batch, window_samples] — one window per row, batch resizable, default 1 — output
``probabilities`` [batch, C]; windowing and averaging are the caller's job). It carries TFLite Model Metadata
(sample rate, labels; :mod:`genrenet.infer.tflite_metadata`), so MediaPipe Tasks' AudioClassifier loads it as it
is. TF Serving ignores files in a
version directory that are not part of the SavedModel (``model.tflite``, the model card ``README.md``), and ``tf.saved_model.load`` reads only
``saved_model.pb``, ``variables/`` and ``assets/``. Recurrent layers are unrolled for the conversion (the window
length is fixed, so their step count is static).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib.metadata import version as package_version

import keras
import tensorflow as tf

from ..data.windows import frame_windows, window_count
from ..errors import ExportError, check_positive, check_whole
from ..keras_compat import attach_assets
from ..nn.wav import decode_wav_batch
from ..infer.calibration import temper
from ..infer.classifier import Classifier
from ..infer.source import EXPORT_META_FILE
from ..run import Run, staging_dir
from ..run.card import CARD_FILE, run_card
from ..infer.multilabel import read_thresholds
from ..infer.tflite_metadata import with_audio_metadata
from ..infer import quantize as quantization
from ..infer.quantize import tflite_model

TFLITE_FILE = "model.tflite"




def windowed_classifier(model, labels, window_samples: int, hop_samples: int | None = None, thresholds=None,
                        temperature: float = 1.0):
    """``classify(waveform [B, T], lengths [B] | None)`` → {probabilities, label_id, label} (and ``tags`` with
    per-tag ``thresholds``: :func:`passing_tags`).

    Every window's probabilities are tempered by the run's calibration ``temperature`` before the mean (as
    predict does). A waveform holding NaN or infinite samples, or no samples, raises InvalidArgument.

    Row ``b`` holds ``lengths[b]`` real samples (default: all ``T``); its windows are those predict cuts
    (:func:`genrenet.data.windows.frame_windows`: shorter than a window is zero-padded, audio after the last
    whole window is left out). They are gathered across the batch, run through the model in one call and
    averaged per row, so padding added to batch rows of different lengths never counts.
    """
    hop = hop_samples or window_samples
    label_table = tf.constant(list(labels))

    def classify(waveform, lengths=None):
        waveform = tf.debugging.assert_all_finite(tf.cast(waveform, tf.float32),
                                                  "the waveform holds NaN or infinite samples")
        with tf.control_dependencies([tf.debugging.assert_positive(
                tf.shape(waveform)[1], message="the waveform is empty (no samples)")]):
            waveform = tf.identity(waveform)
        batch = tf.shape(waveform)[0]
        if lengths is None:
            lengths = tf.fill([batch], tf.shape(waveform)[1])
        windows = frame_windows(waveform, window_samples, hop)                         # [B, n, W]
        counts = window_count(tf.cast(lengths, tf.int32), window_samples, hop)         # [B], each in 1..n
        mask = tf.sequence_mask(counts, tf.shape(windows)[1])
        chosen = tf.boolean_mask(windows, mask)                                   # [sum(counts), W]
        owner = tf.boolean_mask(tf.broadcast_to(tf.range(batch)[:, None], tf.shape(mask)), mask)
        probs = tf.cast(model(chosen, training=False), tf.float32)
        if temperature != 1.0:
            probs = temper(probs, temperature)
        probs = tf.math.unsorted_segment_sum(probs, owner, batch) / tf.cast(counts, tf.float32)[:, None]
        label_id = tf.argmax(probs, axis=-1, output_type=tf.int64)
        out = {"probabilities": probs, "label_id": label_id, "label": tf.gather(label_table, label_id)}
        if thresholds is not None:
            out["tags"] = passing_tags(probs, label_table, thresholds)
        return out

    return classify


def passing_tags(probs, label_table, thresholds):
    """string [B, C]: per row the tags whose probability is at least their threshold, highest first, then ``""``
    (the graph's form of :func:`genrenet.infer.multilabel.passing_tags`)."""
    passes = probs >= tf.constant(thresholds, tf.float32)[None, :]
    order = tf.argsort(tf.where(passes, probs, -1.0), axis=-1, direction="DESCENDING", stable=True)
    names = tf.gather(label_table, order)
    return tf.where(tf.gather(passes, order, batch_dims=1), names, tf.constant(""))


def wav_classifier(model, labels, sample_rate: int, window_samples: int, hop_samples: int | None = None,
                   thresholds=None, temperature: float = 1.0):
    """A function wav_bytes string [B] → {probabilities, label_id, label[, tags]} (decode, mono, resample,
    windows)."""
    classify = windowed_classifier(model, labels, window_samples, hop_samples, thresholds, temperature)

    def classify_wav(wav_bytes):
        waveform, lengths = decode_wav_batch(wav_bytes, sample_rate)
        return classify(waveform, lengths)

    return classify_wav


def described_tflite(run: Run, content: bytes) -> bytes:
    """``content`` with TFLite Model Metadata (sample rate, labels, name, genrenet version, and a tagger's per-tag
    thresholds), which MediaPipe Tasks' AudioClassifier needs to load the file; LiteRT ignores it."""
    name = f"genrenet {run.model_name}"
    thresholds = read_thresholds(run.path, run.labels) if run.config["model"].get("multi_label") else None
    kind = "tagger" if run.config["model"].get("multi_label") else "genre classifier"
    return with_audio_metadata(content, sample_rate=run.sample_rate, labels=run.labels, name=name,
                               description=f"{name} {kind}", version=package_version("genrenet"),
                               thresholds=thresholds)


def export_meta(run: Run, name: str, version: int, tflite: bool) -> dict:
    """``assets/genrenet.json``: what a client needs to call the export (labels, rate, window, signatures)."""
    window = run.window_samples
    meta = {"name": name, "version": int(version), "model": run.model_name, "labels": run.labels,
            "sample_rate": run.sample_rate, "window_samples": window, "features": run.features.to_dict(),
            "signatures": {
                "serving_default": {"inputs": {"waveform": "float32 [batch, samples]"}},
                "classify_wav": {"inputs": {"wav_bytes": "string [batch] (16-bit PCM WAV files)"}},
            },
            "outputs": {"probabilities": "float32 [batch, classes]", "label_id": "int64 [batch]",
                        "label": "string [batch]"}}
    if run.config["model"].get("multi_label"):
        meta["multi_label"] = True
        thresholds = read_thresholds(run.path, run.labels)
        if thresholds is not None:
            meta["thresholds"] = {"labels": list(run.labels), "thresholds": thresholds}
            meta["outputs"]["tags"] = "string [batch, classes]: tags at or above their threshold, highest first"
    if run.calibration:
        meta["calibration"] = dict(run.calibration, applied="in the graph: every signature's and model.tflite's "
                                                            "probabilities are tempered")
    if tflite:
        meta["tflite"] = {"file": TFLITE_FILE, "inputs": {"waveform": f"float32 [batch, {window}] (one window "
                                                                    "per row; batch resizable, default 1)"},
                          "outputs": {"probabilities": "float32 [batch, classes]"}, "ops": "TFLITE_BUILTINS"}
    return meta


def check_export_names(name, version, hop_seconds):
    """A :class:`ConfigError` (``param`` naming it) for a version that is not a whole number ≥ 0, a hop that is
    not > 0, or a name that is not one folder name: before anything is written."""
    check_whole(version, "version", at_least=0)
    check_positive(hop_seconds, "hop_seconds", optional=True)
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ExportError(f"must be a folder name (no path separators), got {name!r}", param="name")


def export(run, out: str = "export", *, name: str = "genrenet", version: int = 1, force: bool = False,
           tflite: bool = False, quantize=None, calibration_data: str | None = None,
           hop_seconds: float | None = None, verbose: int = 1) -> str:
    """Write ``out/name/version/`` (SavedModel + ``assets/labels.txt`` + ``assets/genrenet.json``, the model card
    ``README.md``, and with ``tflite`` also ``model.tflite``).

    The version directory is written under a temporary name and renamed, so it is never half-written (a
    failed TFLite conversion leaves nothing behind); an existing version is refused unless ``force``.
    Returns the version directory. ``run``: a run directory, a preset name, a :class:`~genrenet.run.Run` or a
    :class:`~genrenet.infer.Classifier` of either. ``hop_seconds`` spaces the windows the signatures cut.
    ``quantize`` (``"float16"``, ``"dynamic"``, ``"int8"`` or several, comma-separated; implies ``tflite``)
    also writes ``model-<mode>.tflite`` for each, calibrated and measured on windows of ``calibration_data``
    (default: the data the run was trained on); see :mod:`genrenet.infer.quantize`.
    """
    check_export_names(name, version, hop_seconds)
    modes = quantization.parse_quantize(quantize)
    tflite = tflite or bool(modes)
    run = run if isinstance(run, Run) else source_run(run)
    target = os.path.join(out, name, str(int(version)))
    if os.path.exists(target) and not force:
        raise ExportError(f"{target} already exists: set it to replace that version, or choose another version",
                          param="force")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    windows = calibration_windows(run, calibration_data) if modes else None
    model = run.load_model()
    window = run.window_samples
    hop = int(round(hop_seconds * run.sample_rate)) if hop_seconds else window
    meta = dict(export_meta(run, name, version, tflite), hop_samples=hop)
    staging = staging_dir(os.path.dirname(target), f".tmp-{version}-")
    try:
        write_saved_model(staging, model, run, meta, hop)
        if tflite:
            float_content = described_tflite(run, tflite_model(model, window, temperature=run.temperature))
            with open(os.path.join(staging, TFLITE_FILE), "wb") as f:
                f.write(float_content)
            for mode in modes:
                meta["tflite"].setdefault("quantized", {})[mode] = write_quantized(
                    staging, run, model, mode, windows, float_content)
            if modes:  # the measured agreement goes into genrenet.json too
                meta["tflite"]["calibration_data"] = calibration_data or run.data_spec
                rewrite_export_meta(staging, meta)
        with open(os.path.join(staging, CARD_FILE), "w", encoding="utf-8") as f:
            f.write(run_card(run, exported=meta, path=target))
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    if verbose:
        print(f"exported {run.model_name} to {target}\n"
              f"  serving_default: waveform float32 [batch, samples] at {run.sample_rate} Hz (≥ {window} samples)\n"
              f"  classify_wav:    wav_bytes string [batch], 16-bit PCM WAV files at any rate, mono or stereo")
        if tflite:
            print(f"  {TFLITE_FILE}:    waveform float32 [batch, {window}] (one window per row) → probabilities")
        for mode, q in meta.get("tflite", {}).get("quantized", {}).items():
            print(f"  {q['file']}: {q['bytes'] / 1e6:.2f} MB ({q['size_ratio']:.2f}× float32), same labels as "
                  f"float32 on {100 * q['label_agreement']:.1f}% of {q['windows']} held-out windows")
    return target


def calibration_windows(run: Run, spec: str | None) -> tuple:
    """``(calibration, held_out)`` windows of ``spec`` or of the run's training data."""
    spec = spec or run.data_spec
    if not spec:
        raise ExportError(f"{run.path}: the run records no training data to calibrate on; name some audio "
                          "of the kind it will classify", param="calibration_data")
    return quantization.audio_windows(spec, run.sample_rate, run.window_samples)


def write_quantized(folder: str, run: Run, model, mode: str, windows: tuple, float_content: bytes) -> dict:
    """Write ``model-<mode>.tflite`` into ``folder`` with the float file's metadata; returns what it measured
    (size, label agreement and largest probability difference against the float32 file)."""
    calibration, held_out = windows
    content = described_tflite(run, tflite_model(model, run.window_samples, mode, calibration,
                                                    temperature=run.temperature))
    path = os.path.join(folder, quantization.quantized_file(mode))
    with open(path, "wb") as f:
        f.write(content)
    return {"file": os.path.basename(path), "bytes": len(content), "float32_bytes": len(float_content),
            "size_ratio": round(len(content) / len(float_content), 3),
            "calibration_windows": len(calibration) if mode == "int8" else 0,
            **quantization.agreement(float_content, content, held_out)}


def rewrite_export_meta(folder: str, meta: dict):
    """Replace ``assets/genrenet.json`` in the staged export ``folder`` with ``meta``."""
    with open(os.path.join(folder, "assets", EXPORT_META_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)


def write_saved_model(folder: str, model, run: Run, meta: dict, hop: int):
    """The SavedModel (its two signatures, ``assets/labels.txt`` and ``assets/genrenet.json``) into ``folder``."""
    window = run.window_samples
    asset_dir = tempfile.mkdtemp(prefix="genrenet-assets-")
    try:
        labels_path = os.path.join(asset_dir, "labels.txt")
        with open(labels_path, "w", encoding="utf-8") as f:
            f.write("\n".join(run.labels) + "\n")
        with open(os.path.join(asset_dir, EXPORT_META_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
        archive = keras.export.ExportArchive()
        archive.track(model)
        attach_assets(archive, labels_txt=labels_path, genrenet_json=os.path.join(asset_dir, EXPORT_META_FILE))
        thresholds, t = meta.get("thresholds", {}).get("thresholds"), run.temperature
        archive.add_endpoint("serving_default", windowed_classifier(model, run.labels, window, hop, thresholds, t),
                             input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
        archive.add_endpoint("classify_wav", wav_classifier(model, run.labels, run.sample_rate, window, hop,
                                                            thresholds, t),
                             input_signature=[tf.TensorSpec([None], tf.string, name="wav_bytes")])
        archive.write_out(folder, verbose=False)
    finally:
        shutil.rmtree(asset_dir, ignore_errors=True)


def source_run(source) -> Run:
    """The run directory behind a model source; an export or a ``.tflite`` file is refused (it is exported)."""
    clf = Classifier.from_preset(source)
    if clf.run is None:
        raise ExportError(f"{clf.source}: a {clf.kind} is already exported; export a run directory or a preset")
    return clf.run
