"""Shared fixtures: tiny synthetic data, a trained tiny run, real GTZAN clips from ../shared when present."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
GTZAN_DEV = SHARED_DATA / "gtzan_dev"
TINY = "synthetic:classes=3,clips=4,seconds=3.5"
#: For comparisons with the original ``musicnn`` package; genrenet's presets and pretrained models use the
#: weights shipped in genrenet/models/weights and need no such mark.
needs_musicnn = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                                   reason="needs the original package: pip install --no-deps musicnn==0.1.0")


@pytest.fixture(scope="module")
def preset_cache(tmp_path_factory):
    """A private cache root for a test module (the CLI subprocesses inherit it)."""
    old = os.environ.get("GENRENET_CACHE")
    os.environ["GENRENET_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield os.environ["GENRENET_CACHE"]
    if old is None:
        os.environ.pop("GENRENET_CACHE")
    else:
        os.environ["GENRENET_CACHE"] = old


@pytest.fixture(scope="session")
def gtzan_dev():
    """The 40 real GTZAN clips of ../shared/data (skips when ../shared is absent)."""
    if not GTZAN_DEV.is_dir():
        pytest.skip("../shared/data/gtzan_dev is absent (real GTZAN clips are only beside the repo in CI/dev)")
    return GTZAN_DEV


def run_cli(*args, cwd=None, timeout=600):
    """Run ``python -m genrenet ARGS`` in a subprocess; returns CompletedProcess (text)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "genrenet", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout, stdin=subprocess.DEVNULL)


def write_tone(path, seconds=1.0, sr=22050, freq=440.0, channels=1, subtype=None):
    """A sine tone (plus a little noise) written with soundfile; the format follows the extension."""
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(int(freq))
    mono = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), sr, subtype=subtype)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A cnn trained for one epoch on tiny synthetic data (shared by CLI/predict/export tests)."""
    from genrenet.training.trainer import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train("cnn", TINY, str(out), epochs=1, verbose=0, model_kwargs={"filters": [8, 16], "dense_units": [16]})
    return out
