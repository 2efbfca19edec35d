"""``export``: a run → a SavedModel in TF Serving layout ``DIR/<name>/<version>/`` (core TF ops only).

``serving_default`` takes ``waveform`` float32 [batch, samples] at the model's rate, of any length: the graph
cuts it into windows, runs the model on all of them and averages their probabilities per example.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from .runs import Run


class ExportError(ValueError):
    """The export cannot be written (existing version without --force, bad run)."""


def windowed_classifier(model, labels, window_samples: int, hop_samples: int | None = None):
    """A function waveform [B, N] → {probabilities, label_id, label}, averaging the model over windows."""
    hop = hop_samples or window_samples
    label_table = tf.constant(list(labels))

    def classify(waveform):
        waveform = tf.cast(waveform, tf.float32)
        batch = tf.shape(waveform)[0]
        length = tf.shape(waveform)[1]
        waveform = tf.pad(waveform, [[0, 0], [0, tf.maximum(0, window_samples - length)]])
        windows = tf.signal.frame(waveform, window_samples, hop, pad_end=False)  # [B, n, W]
        n = tf.shape(windows)[1]
        probs = model(tf.reshape(windows, [-1, window_samples]), training=False)
        probs = tf.reduce_mean(tf.reshape(tf.cast(probs, tf.float32), [batch, n, -1]), axis=1)
        label_id = tf.argmax(probs, axis=-1, output_type=tf.int64)
        return {"probabilities": probs, "label_id": label_id, "label": tf.gather(label_table, label_id)}

    return classify


def export(run, out: str = "export", *, name: str = "genrenet", version: int = 1, force: bool = False,
           verbose: int = 1) -> str:
    """Write ``out/name/version/`` (SavedModel + ``assets/labels.txt`` + ``assets/genrenet.json``).

    The version directory is written under a temporary name and renamed, so it is never half-written;
    an existing version is refused unless ``force``. Returns the version directory.
    """
    run = run if isinstance(run, Run) else Run(run)
    target = os.path.join(out, name, str(int(version)))
    if os.path.exists(target) and not force:
        raise ExportError(f"{target} already exists; pass --force to replace it or choose another --version")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    model = run.load_model()
    meta = {"name": name, "version": int(version), "model": run.config.get("model"), "labels": run.labels,
            "sample_rate": run.sample_rate, "window_samples": run.window_samples, "features": run.config["features"],
            "signatures": ["serving_default"]}
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=os.path.dirname(target))
    try:
        asset_dir = tempfile.mkdtemp(prefix="genrenet-assets-")
        labels_path = os.path.join(asset_dir, "labels.txt")
        with open(labels_path, "w", encoding="utf-8") as f:
            f.write("\n".join(run.labels) + "\n")
        with open(os.path.join(asset_dir, "genrenet.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
        archive = keras.export.ExportArchive()
        archive.track(model)
        # ExportArchive saves its `_tf_trackable`; assets attached there are copied into `assets/`.
        archive._tf_trackable.labels_txt = tf.saved_model.Asset(labels_path)
        archive._tf_trackable.genrenet_json = tf.saved_model.Asset(os.path.join(asset_dir, "genrenet.json"))
        archive.add_endpoint(
            "serving_default",
            windowed_classifier(model, run.labels, run.window_samples),
            input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")],
        )
        archive.write_out(staging, verbose=False)
        shutil.rmtree(asset_dir, ignore_errors=True)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    if verbose:
        print(f"exported {run.config.get('model')} to {target} (signature serving_default: waveform float32 "
              f"[batch, samples] at {run.sample_rate} Hz, ≥ {run.window_samples} samples)")
    return target


def load_export_meta(path: str) -> dict:
    """The ``genrenet.json`` recorded beside an exported SavedModel."""
    with open(os.path.join(path, "assets", "genrenet.json"), encoding="utf-8") as f:
        return json.load(f)
