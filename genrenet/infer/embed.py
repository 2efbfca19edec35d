"""Clip embeddings: the features a model's classifier reads, averaged over a clip's windows, for linear probes,
nearest-neighbour search and plots. ``Classifier.embed`` (and ``genrenet embed``) runs them for a run or a
preset; :func:`registered_model` gives a registered architecture, e.g. musicnn with pretrained weights."""
from __future__ import annotations

import csv
from typing import Optional

import numpy as np

from .. import registry
from ..data import Clip, SkipLog
from ..nn.blocks import penultimate_model
from ..run import atomic_path
from .windows import model_forward, predict_clips


def registered_model(name: str, pretrained: Optional[str] = None):
    """``(model, sample_rate, window_samples)`` of a registered architecture (``pretrained`` weights tag)."""
    spec = registry.get_spec(name)  # UnknownModelError lists the known names
    model = registry.build_model(name, num_classes=2, **({"pretrained": pretrained} if pretrained else {}))
    return model, spec.features.sample_rate, int(model.input_shape[-1])


def embed_files(model, files, *, sample_rate: int, window_samples: int, batch_size: int = 32,
                verbose: int = 1) -> dict:
    """``{"files", "embeddings" [N, D], "windows" [N], "skipped"}`` of a Keras model's penultimate features;
    files that cannot be decoded are left out and listed in ``skipped`` with the reason."""
    net = penultimate_model(model)
    clips = [Clip(id=str(f), label="", path=str(f)) for f in files]
    log = SkipLog()
    mean, _, counts = predict_clips(net, clips, sample_rate=sample_rate, window_samples=window_samples,
                                    batch_size=batch_size, log=log, verbose=verbose)
    ok = counts > 0
    return {"files": np.array([c.path for c, k in zip(clips, ok) if k]),
            "embeddings": mean[ok].astype(np.float32), "windows": counts[ok],
            "skipped": sorted(log.skipped.items())}


def window_embeddings(model):
    """``windows [n, W] → penultimate features [n, D]`` (NumPy) of a Keras model, one window batch at a time (what
    Beam's workers run; a clip's embedding is the mean over its windows, as :func:`embed_files` gives it)."""
    net = penultimate_model(model)
    forward = model_forward(net, num_clips=0)

    def embeddings(windows):
        return forward(windows) if net is not None else None  # holds net: the compiled forward refers to it weakly

    return embeddings


def write_embeddings(out: str, result: dict):
    """Write ``result`` to ``out``: ``.csv`` (file, windows, e0…) or ``.npz`` (files, embeddings, windows)."""
    with atomic_path(out) as tmp:
        if out.lower().endswith(".csv"):
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["file", "windows"] + [f"e{i}" for i in range(result["embeddings"].shape[1])])
                for name, n, e in zip(result["files"], result["windows"], result["embeddings"]):
                    w.writerow([name, int(n)] + [f"{v:.6g}" for v in e])
        else:
            with open(tmp, "wb") as f:
                np.savez(f, files=result["files"], embeddings=result["embeddings"], windows=result["windows"])
