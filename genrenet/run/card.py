"""Model cards: ``RUN/README.md`` and ``<export>/<name>/<version>/README.md``.

A card is YAML front matter in the Hugging Face convention (``library_name``, ``pipeline_tag``, ``tags``,
``model-index`` results naming the dataset and split) followed by a short text: architecture, front-end,
window, training settings, results and how to predict and serve. It is made from the run's own files
(``config.json``, ``labels.json``, ``metrics.json``, ``eval-*/metrics.json``), so writing it again after an
evaluation adds that evaluation and loses nothing.
"""
from __future__ import annotations

import glob
import json
import os
import re
from typing import Optional

from ..errors import GenrenetError
from . import Run, write_text
from .config import structured_config

CARD_FILE = "README.md"
PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}  # would not read back as strings
KNOWN_DATA_KINDS = ("synthetic", "gtzan", "fma", "csv")
RESULT_METRICS = (("clip_accuracy", "accuracy", "Clip accuracy"), ("macro_f1", "f1", "Macro-F1"),
                  ("window_accuracy", "accuracy", "Window accuracy"), ("roc_auc_macro", "roc_auc", "ROC-AUC (macro)"),
                  ("pr_auc_macro", "pr_auc", "PR-AUC (macro)"), ("ece", "ece", "ECE"), ("nll", "nll", "NLL"),
                  ("brier", "brier", "Brier"))


# --- YAML front matter ------------------------------------------------------------------------------------------

def yaml_scalar(value) -> str:
    """A YAML scalar: plain words as they are, other strings double-quoted as JSON (a subset of YAML's
    double-quoted style)."""
    if isinstance(value, dict) or isinstance(value, list):
        return "{}" if isinstance(value, dict) else "[]"
    if isinstance(value, str) and PLAIN_WORD.fullmatch(value) and value.lower() not in YAML_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


def to_yaml(value, indent: int = 0) -> str:
    """Block-style YAML of nested dicts and lists (non-empty ones; empty ones and scalars inline)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:\n{to_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {yaml_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}- {to_yaml(item, indent + 1).lstrip()}")
            else:
                lines.append(f"{pad}- {yaml_scalar(item)}")
    return "\n".join(lines)


def data_kind(spec: str) -> str:
    """``gtzan``, ``fma``, ``csv``, ``synthetic`` or ``folder``: the kind of dataset a data spec names."""
    head = str(spec).split(":", 1)[0].split("?", 1)[0]
    return head if head in KNOWN_DATA_KINDS else "folder"


def model_index_result(data: str, split: str, metrics: dict, prefix: str = "") -> Optional[dict]:
    """One ``model-index`` result (task, dataset with split, metrics), or None without metrics."""
    values = [{"type": kind, "value": round(float(metrics[prefix + key]), 4), "name": name}
              for key, kind, name in RESULT_METRICS if metrics.get(prefix + key) is not None]
    if not values:
        return None
    return {"task": {"type": "audio-classification", "name": "Music genre classification"},
            "dataset": {"name": str(data), "type": data_kind(data), "split": split}, "metrics": values}


def results(config: dict, metrics: dict, evaluations: list) -> list:
    """Every result of a run: the validation part of its training data, then each evaluation."""
    found = [model_index_result(config.get("data", {}).get("spec", ""), "validation", metrics, prefix="val_")]
    found += [model_index_result(e.get("data", ""), split_label(e), e) for e in evaluations]
    return [r for r in found if r]


def split_label(evaluation: dict) -> str:
    """How a result's split is named: ``training clips`` when the run trained on any of the clips scored (such
    a figure is never a test result), else the split."""
    split = evaluation.get("split", "all")
    if evaluation.get("training_clips"):
        return f"training clips ({evaluation['training_clips']} of {evaluation.get('num_clips')}, split {split})"
    return split


def front_matter(config: dict, labels: list, metrics: dict, evaluations: list) -> dict:
    """The card's metadata (Hugging Face model card keys, plus ``labels`` and ``training_data``)."""
    model = config["model"]["name"]
    return {
        "library_name": "keras", "pipeline_tag": "audio-classification",
        "tags": ["genrenet", "keras", "tensorflow", "audio", "music", "music-genre-classification", model],
        "labels": list(labels), "training_data": config.get("data", {}).get("spec"),
        "model-index": [{"name": f"genrenet-{model}", "results": results(config, metrics, evaluations)}],
    }


# --- the text ---------------------------------------------------------------------------------------------------

def _table(rows) -> list:
    return ["| | |", "| --- | --- |"] + [f"| {key} | {value} |" for key, value in rows if value not in (None, "")]


def model_section(config: dict, labels: list, description: str = "") -> list:
    """Architecture, input, front-end and output."""
    model = config["model"]
    features = model.get("features", {})
    rate = features.get("sample_rate")
    front = ", ".join(f"{k} {features[k]}" for k in ("n_mels", "n_fft", "hop_length", "fmin", "fmax")
                      if features.get(k) is not None)
    return ["## Model", ""] + _table([
        ("architecture", f"`{model['name']}`" + (f": {description}" if description else "")),
        ("hyper-parameters", f"`{json.dumps(model.get('hyperparameters', {}), ensure_ascii=False)}`"),
        ("input", f"`waveform`: mono float32 audio at {rate} Hz, windows of {model.get('window_seconds')} s "
                  f"({model.get('window_samples')} samples); a clip is the mean of its windows' probabilities"),
        ("front-end", f"log-mel spectrogram inside the model ({front})" if front else None),
        ("output", f"`probabilities` over {len(labels)} genres: {', '.join(labels)}"),
    ]) + [""]


def training_section(config: dict, metrics: dict) -> list:
    """Data and settings of the training run (an ensemble has none: only its versions)."""
    versions = config.get("run", {}).get("versions", {})
    data, settings = config.get("data", {}), config.get("training", {})
    pretrained = settings.get("pretrained")
    return ["## Training", ""] + _table([
        ("data", f"`{data.get('spec')}`: {data.get('train_clips')} clips for training, "
                 f"{data.get('val_clips')} for validation" if data else None),
        ("epochs", f"{metrics.get('epochs_run')} run (of {settings.get('epochs')}), best {metrics.get('best_epoch')} "
                   f"(early stopping, patience {settings.get('patience')})" if metrics else settings.get("epochs")),
        ("optimizer", f"Adam, learning rate {settings.get('learning_rate')} ({settings.get('lr_schedule')}), "
                      f"batch size {settings.get('batch_size')}" if settings else None),
        ("augmentation", f"`{json.dumps(settings.get('augment'), ensure_ascii=False)}`" if settings else None),
        ("pretrained", f"`{pretrained}` (backbone {'frozen' if settings.get('freeze_backbone') else 'trained'})"
         if pretrained else None),
        ("seed", settings.get("seed")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]) + [""]


def results_section(config: dict, metrics: dict, evaluations: list) -> list:
    """One row per result; says so when there are none yet."""
    rows = results(config, metrics, evaluations)
    if not rows:
        return ["## Results", "", "No evaluation yet: `genrenet evaluate RUN --data SPEC` adds one here.", ""]
    lines = ["## Results", "", "| data | split | " + " | ".join(name for _, _, name in RESULT_METRICS) + " |",
             "| --- | --- |" + " ---: |" * len(RESULT_METRICS)]
    for r in rows:
        values = {m["name"]: f"{m['value']:.3f}" for m in r["metrics"]}
        lines.append(f"| `{r['dataset']['name']}` | {r['dataset']['split']} | "
                     + " | ".join(values.get(name, "") for _, _, name in RESULT_METRICS) + " |")
    if any(r["dataset"]["split"].startswith("training clips") for r in rows):
        lines += ["", "A row on *training clips* scores clips the model was trained on: it says how well the model "
                      "fits them, not how it does on music it has not heard."]
    return lines + [""]


def calibration_section(calibration: Optional[dict]) -> list:
    """How the probabilities were calibrated, and how well (``calibration.json``)."""
    if not calibration or calibration.get("method") != "temperature":
        return ["## Calibration", "", "Not calibrated: the run had no held-out clips to fit a temperature on "
                "(train with `--val-fraction`, or a frozen backbone's head, which is calibrated out-of-fold).", ""]
    before, after = calibration.get("before", {}), calibration.get("after", {})
    crossed = calibration.get("cross_fitted")
    return ["## Calibration", ""] + _table([
        ("method", f"temperature scaling, T = {calibration['temperature']:.3f}, fitted on {calibration['fitted_on']}"
                   f" ({calibration.get('num_clips')} clips)"),
        ("ECE (15 bins)", f"{before.get('ece', 0):.3f} before, {after.get('ece', 0):.3f} after"
         + (f"; {crossed['ece']:.3f} with the temperature of the other folds (clips its fit never saw)"
            if crossed else "")
         + (f" (a perfectly calibrated model would measure {calibration['ece_floor']:.3f} on as many clips)"
            if calibration.get("ece_floor") is not None else "")),
        ("mean top probability − accuracy", f"{calibration['confidence_gap']:.3f} after"
         if calibration.get("confidence_gap") is not None else None),
        ("NLL", f"{before.get('nll', 0):.3f} before, {after.get('nll', 0):.3f} after"),
        ("Brier", f"{before.get('brier', 0):.3f} before, {after.get('brier', 0):.3f} after"),
        ("uncertain", f"a prediction whose top probability is below {calibration['min_confidence']:.2f} is marked "
                      f"`uncertain` (held-out clips at or above it were right ≥ "
                      f"{calibration.get('target_accuracy', 0.9):.0%} of the time)"),
    ]) + [""]


def usage_section(path: str, exported: Optional[dict] = None) -> list:
    """How to predict, evaluate, export, serve and look at the training curves."""
    if exported:
        here = f"the SavedModel in this folder (`{exported['name']}` version {exported['version']})"
        lines = [f"Serve {here} with TF Serving (`--model_base_path` = its parent folder): signatures "
                 "`serving_default` (`waveform` float32 [batch, samples]) and `classify_wav` (`wav_bytes`, WAV "
                 "files at any rate).", "", "```bash", f"genrenet predict {path} song.mp3"]
        if "tflite" in exported:
            lines.append(f"genrenet predict {path}/model.tflite song.mp3   # also loads in MediaPipe and LiteRT")
        return ["## Use", ""] + lines + ["```", ""]
    return ["## Use", "", "```bash", f"genrenet predict {path} song.mp3", f"genrenet evaluate {path} --data SPEC",
            f"genrenet export {path} --out export/ --tflite   # TF Serving, MediaPipe, LiteRT",
            f"tensorboard --logdir {path}/logs", "```", ""]


def ondevice_section(exported: Optional[dict]) -> list:
    """The TFLite files of an export: precision, size and measured agreement with the float32 file."""
    tflite = (exported or {}).get("tflite")
    if not tflite:
        return []
    quantized = tflite.get("quantized", {})
    rows = [f"| `{tflite['file']}` | float32 | {size_mb(next(iter(quantized.values()))['float32_bytes'])} | 1 "
            "| reference | reference |"] if quantized else []
    for mode, q in quantized.items():
        rows.append(f"| `{q['file']}` | {PRECISIONS.get(mode, mode)} | {size_mb(q['bytes'])} | {q['size_ratio']:.2f} "
                    f"| {100 * q['label_agreement']:.1f}% | {q['max_probability_difference']:.4f} |")
    lines = ["## On-device files", "", "TFLite files with TFLite Model Metadata (MediaPipe's AudioClassifier and "
             "LiteRT load them as they are); input: one window of float32 audio per row."]
    if rows:
        lines += ["", f"Agreement with the float32 file measured on {next(iter(quantized.values()))['windows']} "
                  f"windows of `{tflite.get('calibration_data')}` that int8 calibration did not use.", "",
                  "| file | precision | size | × float32 | same label | max probability difference |",
                  "| --- | --- | --- | --- | --- | --- |"] + rows
    return lines + [""]


PRECISIONS = {"float16": "float16 weights, float32 compute",
              "dynamic": "int8 weights, activations quantised on the fly",
              "int8": "int8 weights and activations (front-end float32)"}


def size_mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def model_card(config: dict, labels: list, metrics: dict, evaluations: list = (), *, path: str = "RUN",
               description: str = "", exported: Optional[dict] = None, calibration: Optional[dict] = None) -> str:
    """The card's text: front matter, then model, training, results, calibration and usage sections.
    ``config`` is a ``config.json`` dict in either layout."""
    config, evaluations = structured_config(config), list(evaluations)
    title = f"# genrenet `{config['model']['name']}`: music genre classifier"
    body = [title, ""] + model_section(config, labels, description) + training_section(config, metrics) \
        + results_section(config, metrics, evaluations) + calibration_section(calibration) \
        + ondevice_section(exported) + usage_section(path, exported)
    return "---\n" + to_yaml(front_matter(config, labels, metrics, evaluations)) + "\n---\n\n" + "\n".join(body)


# --- from a run directory ---------------------------------------------------------------------------------------

def run_evaluations(run: Run, also: tuple = ()) -> list:
    """The metrics of every evaluation stored in the run (``eval-*/metrics.json``), and ``also``; one per
    dataset and split (``also`` wins)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(run.path), "eval-*", "metrics.json"))):
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
        found[(metrics.get("data"), metrics.get("split"))] = metrics
    for metrics in also:
        found[(metrics.get("data"), metrics.get("split"))] = metrics
    return list(found.values())


def model_description(name) -> str:
    """The registry's one-line description of a model ('' for names it does not know, e.g. ensembles)."""
    from .. import registry  # the registry imports Keras: only a card that names a model needs it

    try:
        return registry.model_info(name)["description"]
    except (GenrenetError, KeyError):
        return ""


def run_card(run: Run, *, also: tuple = (), exported: Optional[dict] = None, path: Optional[str] = None) -> str:
    """The card of a finished run, from its files (evaluations included)."""
    return model_card(run.config, run.labels, run.metrics, run_evaluations(run, also), path=path or run.path,
                      description=model_description(run.model_name), exported=exported,
                      calibration=run.calibration)


def write_run_card(run: Run, *, also: tuple = ()) -> str:
    """(Re)write ``RUN/README.md`` atomically; returns its path."""
    path = run.file(CARD_FILE)
    write_text(path, run_card(run, also=also))
    return path
