"""Record the ORIGINAL musicnn TF1 graph's outputs on real GTZAN audio, as the reference for the Keras port.

The Keras port (``genrenet/models/musicnn.py``) is checked against this file by ``tests/test_musicnn_port.py``.
This script runs the unmodified ``musicnn/models.py`` graph from the ``musicnn`` 0.1.0 wheel, restored from its
TF1 checkpoints, so it needs TF1-style layers (``tf.compat.v1.layers``), i.e. legacy Keras. Run it in its own venv:

    python -m venv /tmp/venv-ref
    /tmp/venv-ref/bin/pip install "tensorflow-cpu==2.21.*" tf_keras==2.21.0 "librosa==0.11.*" numpy
    /tmp/venv-ref/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/venv-ref/bin/python benchmarks/record_musicnn_reference.py \
        --gtzan ../shared/data/gtzan_dev --out tests/data/musicnn_reference.npz

What it records (all small; no audio is stored, only clip ids and sample offsets):

* ``clips``/``offsets``: for each of 5 3-s patches, the GTZAN clip (relative path) and the offset in samples of the
  47 616-sample window (187 frames, musicnn's patch length) in the clip decoded with ``librosa.load(sr=16000)``.
* ``mel_f16``: the musicnn extractor's exact network input for that window: librosa mel power (slaney, n_fft 512,
  hop 256, 96 mels) quantised to float16 as ``extractor.batch_data`` does. ``log10(1 + 10000·float32(mel_f16))``
  is then the exact input of the graph.
* ``<model>_f16``: the 50 tag probabilities (sigmoid) of the original graph on that float16 input, for
  model in MSD_musicnn, MTT_musicnn, MSD_vgg, MTT_vgg; ``<model>_f32``: the same on the un-quantised float32 mel
  (what genrenet's in-graph front-end computes); ``<model>_penultimate_f32``: the 200-d penultimate features.
* ``clip_tags_<model>``: extractor-style song-level tags (mean taggram over non-overlapping 187-frame patches of the
  whole clip, float16 mel as in the extractor) for the ``tag_clips``, like musicnn's README ``top_tags`` example.

The wheel's ``extractor.py`` is broken under NumPy >= 2 (``10000 * mel.astype(float16)`` overflows to inf), so the
extractor's ``batch_data`` is reproduced here with the fix (cast float16 -> float32 before multiplying), and the
checkpoint restore is not wrapped in a bare ``except``.
"""
import argparse
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from musicnn import configuration as config  # noqa: E402
from musicnn import models  # noqa: E402

N_FRAMES = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1, as in the extractor
WINDOW = (N_FRAMES - 1) * config.FFT_HOP  # 47616 samples: a centred STFT gives exactly 187 frames
PATCHES = [  # (clip, window offset in seconds)
    ("blues/blues.00000.wav", 3.0), ("blues/blues.00000.wav", 17.5),
    ("classical/classical.00001.wav", 6.0), ("classical/classical.00001.wav", 21.0),
    ("metal/metal.00002.wav", 12.25),
]
TAG_CLIPS = ["blues/blues.00000.wav", "classical/classical.00001.wav", "metal/metal.00002.wav",
             "disco/disco.00003.wav", "reggae/reggae.00000.wav"]
MODELS = ["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"]


def mel_power(y):
    return librosa.feature.melspectrogram(y=y, sr=config.SR, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE,
                                          n_mels=config.N_MELS).T


def log_compress(mel):
    return np.log10(10000 * mel.astype(np.float32) + 1)


def extractor_patches(path):
    """musicnn.extractor.batch_data (non-overlapping 3-s patches), with the NumPy-2 float16 fix."""
    audio, _ = librosa.load(path, sr=config.SR)
    rep = log_compress(mel_power(audio).astype(np.float16))
    starts = range(0, rep.shape[0] - N_FRAMES + 1, N_FRAMES)
    return np.stack([rep[t: t + N_FRAMES] for t in starts])


def run_graph(model, batches):
    """Run the original graph, restored from the wheel's checkpoint, on each [n, 187, 96] batch."""
    labels = config.MTT_LABELS if "MTT" in model else config.MSD_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        out = models.define_model(x, is_training, model, len(labels))
        probs = tf.nn.sigmoid(out[0])
        penultimate = out[-1] if "musicnn" in model else out[0]
    sess = tf.compat.v1.Session()
    saver = tf.compat.v1.train.Saver()
    saver.restore(sess, os.path.join(os.path.dirname(models.__file__), model) + "/")  # raises if it fails
    results = [sess.run([probs, penultimate], {x: b, is_training: False}) for b in batches]
    sess.close()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gtzan", default="../shared/data/gtzan_dev")
    ap.add_argument("--out", default="tests/data/musicnn_reference.npz")
    args = ap.parse_args()
    tf.compat.v1.disable_eager_execution()

    clips, offsets, mel16 = [], [], []
    cache = {}
    for clip, sec in PATCHES:
        if clip not in cache:
            cache[clip], _ = librosa.load(os.path.join(args.gtzan, clip), sr=config.SR)
        off = int(round(sec * config.SR))
        window = cache[clip][off: off + WINDOW]
        assert window.shape == (WINDOW,), (clip, sec)
        m = mel_power(window)
        assert m.shape == (N_FRAMES, config.N_MELS)
        clips.append(clip)
        offsets.append(off)
        mel16.append(m.astype(np.float16))
    mel16 = np.stack(mel16)
    mel32 = np.stack([mel_power(cache[c][o: o + WINDOW]) for c, o in zip(clips, offsets)])
    in_f16, in_f32 = log_compress(mel16), log_compress(mel32)
    clip_batches = [extractor_patches(os.path.join(args.gtzan, c)) for c in TAG_CLIPS]

    rec = dict(clips=np.array(clips), offsets=np.array(offsets, np.int64), window_samples=np.int64(WINDOW),
               mel_f16=mel16, tag_clips=np.array(TAG_CLIPS),
               window_checksums=np.array([cache[c][o: o + WINDOW].astype(np.float64).sum()
                                          for c, o in zip(clips, offsets)]),
               msd_labels=np.array(config.MSD_LABELS), mtt_labels=np.array(config.MTT_LABELS))
    for model in MODELS:
        (p16, _), (p32, pen32), *clip_out = run_graph(model, [in_f16, in_f32] + clip_batches)
        rec[f"{model}_f16"] = p16.astype(np.float32)
        rec[f"{model}_f32"] = p32.astype(np.float32)
        if "musicnn" in model:
            rec[f"{model}_penultimate_f32"] = pen32.astype(np.float32)
        rec[f"clip_tags_{model}"] = np.stack([p.mean(axis=0) for p, _ in clip_out]).astype(np.float32)
        labels = config.MTT_LABELS if "MTT" in model else config.MSD_LABELS
        for c, t in zip(TAG_CLIPS, rec[f"clip_tags_{model}"]):
            print(model, c, [labels[i] for i in np.argsort(-t)[:5]])
    np.savez_compressed(args.out, **rec)
    print("wrote", args.out, os.path.getsize(args.out), "bytes")


if __name__ == "__main__":
    main()
