"""Convert musicnn's TF1 checkpoints into the compact weight files genrenet ships.

musicnn 0.1.0 (ISC licence) carries its MSD and MTT weights as TF1 checkpoints that also hold Adam's optimizer
slots (three times the model's size). This script keeps only the model variables, as float32, under their TF1
names, in ``genrenet/models/weights/<msd|mtt>_<musicnn|vgg>.npz``; ``genrenet.models.musicnn`` maps them onto
the Keras layers. It also prints the SHA-256 of every source and output file for
``genrenet/models/weights/README.md``.

Run once, from the repository root, with musicnn installed (its pins are obsolete, hence ``--no-deps``)::

    pip install --no-deps musicnn==0.1.0
    python tools/convert_musicnn_weights.py

``tests/test_musicnn_port.py`` checks the shipped files against the package's checkpoints whenever it is
installed.
"""
import argparse
import hashlib
import importlib.resources
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "genrenet", "models", "weights")
VARIANTS = [(tag, arch) for tag in ("msd", "mtt") for arch in ("musicnn", "vgg")]


def model_variables(ckpt_prefix: str) -> dict:
    """The checkpoint's variables without optimizer slots (``*/Adam*``) and Adam's ``beta*_power``."""
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(ckpt_prefix)
    names = sorted(n for n in reader.get_variable_to_shape_map() if "Adam" not in n and not n.endswith("_power"))
    return {n: reader.get_tensor(n).astype(np.float32) for n in names}


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=OUT, help="folder for the .npz files (default: %(default)s)")
    args = parser.parse_args()
    root = str(importlib.resources.files("musicnn"))
    for tag, arch in VARIANTS:
        prefix = os.path.join(root, f"{tag.upper()}_{arch}", "")
        target = os.path.join(args.out, f"{tag}_{arch}.npz")
        np.savez(target, **model_variables(prefix))
        print(f"{tag.upper()}_{arch}/.data-00000-of-00001  sha256 {sha256(prefix + '.data-00000-of-00001')}")
        print(f"{os.path.basename(target)}  sha256 {sha256(target)}  {os.path.getsize(target):,} bytes")


if __name__ == "__main__":
    main()
