"""``embed``: clip embeddings (the features a model's classifier reads, averaged over a clip's windows), for
linear probes and plots. Works from a run or from a registered model, e.g. musicnn with pretrained weights."""
from __future__ import annotations

import csv
from typing import Optional

import numpy as np

from .. import registry
from ..data import Clip, SkipLog
from ..nn.blocks import penultimate_model
from ..presets import resolve
from ..run import Run, atomic_path, is_run_dir
from .windows import predict_clips


def _load(source: str, pretrained: Optional[str]):
    source = resolve(source)
    if is_run_dir(source):
        run = Run(source)
        return run.load_model(), run.sample_rate, run.window_samples
    spec = registry.get_spec(source)  # KeyError lists the known names
    kwargs = {"pretrained": pretrained} if pretrained else {}
    model = registry.build_model(source, num_classes=2, **kwargs)
    return model, spec.features.sample_rate, int(model.input_shape[-1])


def embed(source: str, files, out: Optional[str] = None, *, pretrained: Optional[str] = None,
          batch_size: int = 32, verbose: int = 1) -> dict:
    """Embed ``files`` with a run directory, a preset or a registered model name (``pretrained`` tag for the
    latter).

    Returns ``{"files", "embeddings" [N, D], "windows" [N], "skipped"}``; writes ``out`` as ``.npz`` or
    ``.csv`` when given. Files that cannot be decoded are left out and listed in ``skipped``.
    """
    model, sample_rate, window_samples = _load(source, pretrained)
    net = penultimate_model(model)
    clips = [Clip(id=str(f), label="", path=str(f)) for f in files]
    log = SkipLog()
    mean, _, counts = predict_clips(net, clips, sample_rate=sample_rate, window_samples=window_samples,
                                    batch_size=batch_size, log=log, verbose=verbose)
    ok = counts > 0
    result = {"files": np.array([c.path for c, k in zip(clips, ok) if k]),
              "embeddings": mean[ok].astype(np.float32), "windows": counts[ok],
              "skipped": sorted(log.skipped.items())}
    if out:
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
        if verbose:
            print(f"wrote {len(result['files'])} embeddings of size {result['embeddings'].shape[1]} to {out}")
    return result
