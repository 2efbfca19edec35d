"""Write ``tests/data/flat_layout_run/``: a finished run directory whose ``config.json`` has the flat layout
(format 1: one dict, no ``format`` key), so tests can check that genrenet still reads run directories in it.

The model is a tiny untrained ``cnn`` (filters (4, 8), dense_units (8,), 1-s windows, 2 labels, seeded weights):
it is there to be loaded and run, not to be right. ``config.json`` is written key by key as the flat layout has
it (TrainConfig's settings at the top level beside ``model``, ``hyperparameters``, ``data``, ``features``,
``window_samples``, run facts), not through genrenet's writers, which write the sectioned layout.

Run from the repository root: ``python tests/data/make_flat_layout_run.py`` (rewrites the folder).
"""
import json
import os
import shutil
import sys

import keras

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "flat_layout_run")
LABELS = ["calm", "loud"]
HYPER = {"filters": [4, 8], "dense_units": [8]}


def flat_config(features: dict, defaults: dict, window_samples: int) -> dict:
    """A format-1 ``config.json`` of a 1-epoch cnn run on synthetic data."""
    return {
        "model": "cnn", "epochs": 1, "batch_size": 32, "learning_rate": 0.001, "lr_schedule": "cosine",
        "label_smoothing": 0.0, "seed": 0, "patience": 1, "val_fraction": None, "window_seconds": 1.0,
        "crops_per_clip": None, "model_kwargs": HYPER, "pretrained": None, "freeze_backbone": None, "head": None,
        "fine_tune_epochs": 0, "fine_tune_learning_rate": 1e-05, "augment": {}, "cache": True,
        "memory_budget": None, "deterministic": False, "mixed_precision": "off", "strategy": "default",
        "data_service": None, "evaluate_val": True,
        "hyperparameters": {**defaults, **HYPER}, "data": "synthetic:classes=2,clips=4,seconds=2",
        "features": features, "window_samples": window_samples, "num_classes": len(LABELS),
        "train_clips": 8, "val_clips": 0, "notes": [], "replicas": 1, "global_batch_size": 32, "command": None,
        "versions": {"genrenet": "0.1.0", "keras": keras.__version__},
    }


def main():
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
    from genrenet import registry

    keras.utils.set_random_seed(0)
    spec = registry.get_spec("cnn")
    model = registry.build_model("cnn", num_classes=len(LABELS), window_seconds=1.0, **HYPER)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    config = flat_config(spec.features.to_dict(), spec.defaults(), int(model.input_shape[-1]))
    for name, obj in (("labels.json", LABELS), ("config.json", config), ("metrics.json", {"epochs_run": 1})):
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    model.save(os.path.join(OUT, "model.keras"))
    print(f"wrote {OUT} ({os.path.getsize(os.path.join(OUT, 'model.keras')) / 1024:.0f} kB model.keras)")


if __name__ == "__main__":
    main()
