"""The Keras musicnn / vgg_musicnn ports, with the weights shipped in genrenet/models/weights, against the
ORIGINAL TF1 graphs of the musicnn package.

``tests/data/musicnn_reference.npz`` holds the original graph's 50-tag outputs on 5 real 3-s GTZAN patches,
recorded by ``benchmarks/record_musicnn_reference.py`` (see its docstring). When the musicnn wheel is installed
(``pip install --no-deps musicnn==0.1.0``), the shipped arrays are also compared with its checkpoints. The audio
checks need ``../shared/data/gtzan_dev`` (override with ``GENRENET_GTZAN_DEV``). Nothing is downloaded.
"""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import genrenet
from genrenet.models import musicnn as mn
from genrenet.nn import penultimate_model

REF_PATH = Path(__file__).parent / "data" / "musicnn_reference.npz"
GTZAN_DEV = Path(os.environ.get("GENRENET_GTZAN_DEV", Path(__file__).resolve().parents[2] / "shared" / "data"
                                / "gtzan_dev"))
TOL = 1e-5
VARIANTS = [("musicnn", "musicnn", "msd"), ("musicnn", "musicnn", "mtt"),
            ("vgg_musicnn", "vgg", "msd"), ("vgg_musicnn", "vgg", "mtt")]

try:
    import musicnn as _musicnn_pkg  # noqa: F401
    HAVE_MUSICNN = True
except ImportError:
    HAVE_MUSICNN = False

needs_musicnn = pytest.mark.skipif(
    not HAVE_MUSICNN, reason="the musicnn package is not installed: pip install --no-deps musicnn==0.1.0")
needs_audio = pytest.mark.skipif(
    not GTZAN_DEV.is_dir(), reason=f"real GTZAN clips not found at {GTZAN_DEV} (set GENRENET_GTZAN_DEV)")


@pytest.fixture(scope="module")
def ref():
    return np.load(REF_PATH)


_models = {}


def tag_model(arch, tag):
    """The pretrained model with its original 50 sigmoid tags, built once per test module."""
    if (arch, tag) not in _models:
        _models[arch, tag] = genrenet.build_model(arch, num_classes=None, pretrained=tag)
    return _models[arch, tag]


def body(model):
    """The same model fed from the log-mel (bypassing the in-graph front-end)."""
    import keras

    return keras.Model(model.get_layer("log_mel").output, model.output)


@pytest.fixture(scope="module")
def windows(ref):
    import librosa

    cache, out = {}, []
    n = int(ref["window_samples"])
    for clip, offset in zip(ref["clips"], ref["offsets"]):
        clip = str(clip)
        if clip not in cache:
            cache[clip], _ = librosa.load(GTZAN_DEV / clip, sr=16000)
        out.append(cache[clip][offset: offset + n])
    out = np.stack(out)
    np.testing.assert_allclose(out.astype(np.float64).sum(axis=1), ref["window_checksums"], rtol=0, atol=1e-6,
                               err_msg="the GTZAN audio differs from the audio the reference was recorded on")
    return out


def test_shipped_weights_load_without_the_musicnn_package():
    """A fresh interpreter in which ``import musicnn`` fails still builds both pretrained tag models."""
    script = ("import sys; sys.modules['musicnn'] = None\n"
              "import genrenet\n"
              "for arch in ('musicnn', 'vgg_musicnn'):\n"
              "    m = genrenet.build_model(arch, num_classes=None, pretrained='mtt')\n"
              "    print(arch, m.output.shape[-1])\n"
              "print('musicnn' in sys.modules and sys.modules['musicnn'] is not None)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["musicnn", "50", "vgg_musicnn", "50", "False"]


@needs_musicnn
@pytest.mark.parametrize("key", ["msd_musicnn", "mtt_musicnn", "msd_vgg", "mtt_vgg"])
def test_shipped_weights_equal_the_package_checkpoints(key):
    """Every shipped array is the musicnn wheel's checkpoint variable, bit for bit; no model variable is left out."""
    import importlib.resources

    import tensorflow as tf

    tag, arch = key.split("_")
    reader = tf.compat.v1.train.NewCheckpointReader(
        os.path.join(str(importlib.resources.files("musicnn")), f"{tag.upper()}_{arch}", ""))
    model_vars = {n for n in reader.get_variable_to_shape_map() if "Adam" not in n and not n.endswith("_power")}
    with np.load(mn.weights_path(arch, tag)) as shipped:
        assert set(shipped.files) == model_vars
        for name in shipped.files:
            assert shipped[name].dtype == np.float32
            np.testing.assert_array_equal(shipped[name], reader.get_tensor(name), err_msg=name)


def test_labels_and_info():
    info = genrenet.model_info("musicnn")
    assert info["pretrained"] == ["msd", "mtt"]
    assert info["features"]["sample_rate"] == 16000 and info["features"]["compression"] == "log1p"
    assert len(mn.MSD_LABELS) == len(mn.MTT_LABELS) == 50
    assert mn.pretrained_labels("MSD")[:3] == ["rock", "pop", "alternative"]
    with pytest.raises(ValueError, match="available"):
        genrenet.build_model("musicnn", pretrained="imagenet")
    with pytest.raises(ValueError, match="needs pretrained"):
        genrenet.build_model("musicnn", num_classes=None)


@needs_musicnn
def test_labels_match_the_package():
    from musicnn import configuration

    assert mn.MSD_LABELS == configuration.MSD_LABELS and mn.MTT_LABELS == configuration.MTT_LABELS


@pytest.mark.parametrize("arch,key,tag", VARIANTS)
def test_weights_match_original_graph_on_its_exact_input(ref, arch, key, tag):
    """Same input as the original graph (the extractor's float16-quantised mel): the port is exact."""
    mel = np.log10(10000 * ref["mel_f16"].astype(np.float32) + 1)
    got = body(tag_model(arch, tag)).predict(mel, verbose=0)
    want = ref[f"{tag.upper()}_{key}_f16"]
    assert np.abs(got - want).max() <= TOL


@needs_audio
@pytest.mark.parametrize("arch,key,tag", VARIANTS)
def test_waveform_model_matches_original_graph(ref, windows, arch, key, tag):
    """Raw 16-kHz audio through the in-graph tf.signal front-end vs the original graph on librosa's float32 mel.

    Against the extractor's float16-quantised mel the difference is larger (~1e-4): that quantisation is the
    extractor's, not the network's, and genrenet's front-end does not reproduce it.
    """
    got = tag_model(arch, tag).predict(windows, verbose=0)
    assert np.abs(got - ref[f"{tag.upper()}_{key}_f32"]).max() <= TOL
    assert np.abs(got - ref[f"{tag.upper()}_{key}_f16"]).max() <= 1e-3


@needs_audio
@pytest.mark.parametrize("tag", ["msd", "mtt"])
def test_penultimate_embedding_matches(ref, windows, tag):
    emb = penultimate_model(tag_model("musicnn", tag)).predict(windows, verbose=0)
    assert emb.shape == (len(windows), 200)
    assert np.abs(emb - ref[f"{tag.upper()}_musicnn_penultimate_f32"]).max() <= 1e-4  # unbounded ReLU+BN scale


@needs_audio
@pytest.mark.parametrize("arch,key,tag", [("musicnn", "musicnn", "mtt"), ("musicnn", "musicnn", "msd")])
def test_song_level_top_tags_like_the_readme(ref, arch, key, tag):
    """musicnn's README ``top_tags`` example (mean taggram over 3-s patches), on GTZAN clips.

    The README's own audio is not available here, so the reference is the original graph's top tags on the same
    GTZAN clips, recorded with the extractor's logic. genrenet cuts the waveform into the same 187-frame patches
    and runs the waveform model on each. (2 of the 5 recorded clips, to keep the test fast.)
    """
    model = tag_model(arch, tag)
    labels = mn.pretrained_labels(tag)
    patches = clip_patches(ref)
    got = model.predict(np.concatenate(patches), verbose=0)  # one call: no retracing per clip
    bounds = np.cumsum([0] + [len(p) for p in patches])
    top = lambda p: [labels[i] for i in np.argsort(-p)[:3]]  # noqa: E731
    for i, (clip, want) in enumerate(zip(ref["tag_clips"][:N_TAG_CLIPS], ref[f"clip_tags_{tag.upper()}_{key}"])):
        song = got[bounds[i]: bounds[i + 1]].mean(axis=0)
        assert top(song) == top(want), clip
        assert np.abs(song - want).max() < 0.02, clip


_patches = []
N_TAG_CLIPS = 2


def clip_patches(ref):
    """Each tag clip cut into consecutive 187-frame windows (the extractor's non-overlapping patches)."""
    import librosa

    if not _patches:
        n, hop = int(ref["window_samples"]), 187 * 256
        for clip in ref["tag_clips"][:N_TAG_CLIPS]:
            audio, _ = librosa.load(GTZAN_DEV / str(clip), sr=16000)
            _patches.append(np.stack([audio[s: s + n] for s in range(0, len(audio) - n + 1, hop)]))
    return _patches


@pytest.mark.parametrize("arch", ["musicnn", "vgg_musicnn"])
def test_new_head_on_pretrained_backbone(ref, arch):
    frozen = genrenet.build_model(arch, num_classes=7, pretrained="msd", freeze_backbone=True)
    assert frozen.output.shape[-1] == 7 and frozen.get_layer("probabilities").trainable
    trainable = [w.path for w in frozen.trainable_weights]
    assert trainable and all(p.startswith("probabilities/") for p in trainable), trainable
    # the backbone is the pretrained one: same penultimate features as the 50-tag model
    mel = np.log10(10000 * ref["mel_f16"][:2].astype(np.float32) + 1)
    import keras

    emb = lambda m: keras.Model(m.get_layer("log_mel").output, m.get_layer("penultimate").output)  # noqa: E731
    np.testing.assert_allclose(emb(frozen).predict(mel, verbose=0),
                               emb(tag_model(arch, "msd")).predict(mel, verbose=0), atol=1e-5)
    full = genrenet.build_model(arch, num_classes=7, pretrained="mtt", freeze_backbone=False)
    assert len(full.trainable_weights) > len(frozen.trainable_weights)


def test_pretrained_needs_the_original_front_end():
    with pytest.raises(ValueError, match="features"):
        genrenet.build_model("musicnn", pretrained="msd", features=dataclasses.replace(mn.MUSICNN_FEATURES, n_mels=128))
    with pytest.raises(ValueError, match="window_seconds"):
        genrenet.build_model("vgg_musicnn", pretrained="msd", window_seconds=5.0)
