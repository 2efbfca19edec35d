"""Front-end throughput: genrenet's LogMelSpectrogram against librosa, plain tf.signal, keras.layers.MelSpectrogram
(and kapre / torchaudio when importable), with TF's bare framing + RFFT of the same frames as the ceiling.

    python -m benchmarks.frontend [--clips 32] [--repeats 5] [--batch 32] [--seconds 30] [--no-memory]
                                  [--allocator system|bfc]

All methods see the same clips (seeded synthetic music-like audio: tones + noise, 22050 Hz, 30 s), cut into
batches of ``--batch`` clips, and are timed interleaved (see ``benchmarks/_util.py``); clips/s is the median over
``--repeats`` repetitions. genrenet runs in four modes: ``tf.function`` (core ops traced for the batch's shape),
``as exported`` (the same core ops saved as a SavedModel with an export's ``waveform [None, None]`` signature and
loaded back: what TF Serving runs), ``XLA`` and ``fused`` (XLA around TF's own RFFT, as genrenet evaluates and
predicts: ``genrenet.nn.frontend.fused_frontend``); Keras' layer is exported and loaded the same way.
The verdicts:
  - as exported, genrenet's layer is at least as fast as ``keras.layers.MelSpectrogram`` exported alike,
  - genrenet's full log-mel (best mode) reaches >= 90% of the bare framing + RFFT throughput,
  - genrenet (best mode) is faster than every peer (best mode).
The default batch is 32 x 30-s clips. Every intermediate tensor is then hundreds of MB,
which glibc's allocator maps fresh from the OS on every call, so page faults take much of the time: ``--allocator
bfc`` sets ``TF_CPU_ALLOCATOR_USE_BFC=true`` for the whole process (TensorFlow then keeps freed memory for reuse),
which speeds up every in-graph method; ``--batch 1`` shows the small-tensor case.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks import _util  # noqa: E402

TARGET_CEILING_RATIO = 0.90
TARGET_EXPORTED_KERAS_RATIO = 1.0  # as exported, against keras.layers.MelSpectrogram exported the same way


def make_clips(n: int, seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """Music-like test audio: a few harmonic tones with vibrato plus coloured noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr), dtype=np.float64) / sr
    clips = np.empty((n, t.size), np.float32)
    for i in range(n):
        y = np.zeros_like(t)
        for _ in range(4):
            f0 = rng.uniform(80, 1000)
            vib = 1 + 0.005 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
            for h in range(1, 6):
                y += rng.uniform(0.02, 0.2) / h * np.sin(2 * np.pi * f0 * h * vib * t + rng.uniform(0, 6.3))
        noise = np.cumsum(rng.standard_normal(t.size)) * 1e-3
        y += noise - noise.mean()
        clips[i] = (y / np.max(np.abs(y)) * 0.9).astype(np.float32)
    return clips


EXPORTED = "as exported"  # mode of the SavedModel round-trips (see build_methods)
STAGE = "stage"  # group prefix of the --breakdown rows (not peers: parts of genrenet's own layer)


def build_methods(cfg, export_dir, breakdown=False):
    """name -> (peer group, mode, callable(batch_np) -> materialised result). Groups: genrenet, ceiling, peers,
    and with ``breakdown`` genrenet's layer cut after each of its steps (``stage ...``). The ``as exported``
    methods are SavedModels written into ``export_dir``."""
    import keras
    import librosa
    import tensorflow as tf

    from genrenet.nn.frontend import LogMelSpectrogram, fused_frontend

    n_fft, hop, sr, n_mels = cfg.n_fft, cfg.hop_length, cfg.sample_rate, cfg.n_mels
    fmax = cfg.fmax or sr / 2
    methods = {}

    def tf_method(group, fn, modes=("tf.function", "XLA")):
        for mode in modes:
            f = tf.function(fn, jit_compile=(mode == "XLA"), reduce_retracing=True)

            def run(batch, f=f):
                # the result is computed when the call returns (CPU execution is synchronous); copying it to
                # NumPy would charge the ceiling for its 10 MB complex spectrum per clip, so no method does
                return f(batch)

            methods[f"{group} [{mode}]"] = (group, mode, run)

    def exported_method(group, fn):
        """``fn`` saved as a SavedModel with an export's waveform signature and loaded back: the graph TF Serving
        runs (core ops, Grappler, no XLA, batch and length unknown when traced)."""
        module = tf.Module()
        module.serve = tf.function(fn, input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
        path = os.path.join(export_dir, f"{len(methods)}")
        tf.saved_model.save(module, path)
        methods[f"{group} [{EXPORTED}]"] = (group, EXPORTED, tf.saved_model.load(path).serve)

    # the ceiling: TF's own framing + RFFT of the same (centred) frames, nothing else
    def ceiling(x):
        x = tf.pad(x, [[0, 0], [n_fft // 2, n_fft // 2]])
        return tf.signal.rfft(tf.signal.frame(x, n_fft, hop), fft_length=[n_fft])

    tf_method("bare frame+RFFT (ceiling)", ceiling)

    layer = LogMelSpectrogram(cfg)
    tf_method("genrenet LogMelSpectrogram", layer.call)  # tf.function: core ops, traced for the batch's shape
    exported_method("genrenet LogMelSpectrogram", layer.call)

    def fused(x):  # as genrenet's evaluate and predict trace it: XLA around TF's own RFFT
        with fused_frontend(layer):
            return layer.call(x)

    methods["genrenet LogMelSpectrogram [fused]"] = ("genrenet LogMelSpectrogram", "fused", tf.function(fused))
    if breakdown:  # where the time goes: the layer stopped after each step (the last one adds dB + top_db)
        tf_method(f"{STAGE} 1: frame x Hann window + RFFT", layer.stft)
        tf_method(f"{STAGE} 2: + power re^2+im^2", layer.power_spectrum)
        tf_method(f"{STAGE} 3: + banded mel matmuls", layer.mel_power)

    # a plain tf.signal log-mel as most tutorials write it: stft, abs, square, dense mel matrix, dB
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(n_mels, n_fft // 2 + 1, sr, cfg.fmin, fmax)

    def plain(x):
        x = tf.pad(x, [[0, 0], [n_fft // 2, n_fft // 2]])
        stft = tf.signal.stft(x, n_fft, hop, fft_length=n_fft, window_fn=tf.signal.hann_window)
        mel = tf.tensordot(tf.square(tf.abs(stft)), mel_matrix, axes=1)
        db = 10.0 * tf.math.log(tf.maximum(mel, 1e-10)) / np.log(10.0)
        return tf.maximum(db, tf.reduce_max(db, axis=[-2, -1], keepdims=True) - 80.0)

    tf_method("plain tf.signal", plain)

    keras_mel = keras.layers.MelSpectrogram(
        fft_length=n_fft, sequence_stride=hop, sequence_length=n_fft, window="hann", sampling_rate=sr,
        num_mel_bins=n_mels, min_freq=cfg.fmin, max_freq=fmax, power_to_db=True, top_db=80.0, mag_exp=2.0,
        min_power=1e-10, ref_power=1.0)
    tf_method("keras.layers.MelSpectrogram", keras_mel)
    exported_method("keras.layers.MelSpectrogram", keras_mel)

    def librosa_clips(batch):
        return [librosa.power_to_db(librosa.feature.melspectrogram(
            y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
            htk=cfg.mel_scale == "htk", center=True, pad_mode="constant"), ref=1.0, top_db=80.0) for y in batch]

    methods["librosa [numpy, clip at a time]"] = ("librosa", "numpy", librosa_clips)

    try:
        import kapre.composed  # noqa: F401

        kapre_layer = kapre.composed.get_melspectrogram_layer(
            input_shape=(None, 1), n_fft=n_fft, hop_length=hop, sample_rate=sr, n_mels=n_mels,
            return_decibel=True, input_data_format="channels_last", output_data_format="channels_last")
        tf_method("kapre", lambda x: kapre_layer(x[..., None]))
    except Exception as e:  # kapre pins TF < 2.21: usually absent
        print(f"  (kapre not measured: {type(e).__name__}: {str(e).splitlines()[0][:80]})")
    try:
        import torch
        import torchaudio

        t_mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, center=True, pad_mode="constant",
            power=2.0, norm="slaney", mel_scale=cfg.mel_scale if cfg.mel_scale in ("htk", "slaney") else "htk")
        t_db = torchaudio.transforms.AmplitudeToDB("power", top_db=80.0)

        def torch_run(batch):
            with torch.no_grad():
                return t_db(t_mel(torch.from_numpy(batch))).numpy()

        methods["torchaudio [torch]"] = ("torchaudio", "torch", torch_run)
    except Exception as e:  # torch is not a genrenet dependency
        print(f"  (torchaudio not measured: {type(e).__name__}: {str(e).splitlines()[0][:80]})")
    return methods


def exported_verdict(rates: dict) -> bool:
    """Prints and returns whether genrenet's layer as exported is at least as fast as Keras' exported alike.

    The ratio is the median of the per-repetition ratios: both ran in the same interleaved round, so a burst of
    load from another process cancels out of each one."""
    ours = rates[f"genrenet LogMelSpectrogram [{EXPORTED}]"]
    keras_rates = rates.get(f"keras.layers.MelSpectrogram [{EXPORTED}]")
    if keras_rates is None:
        print("      as exported: keras.layers.MelSpectrogram not selected (--methods), no verdict")
        return True
    per_round = ours / keras_rates
    ratio = _util.median(per_round)
    ok = ratio >= TARGET_EXPORTED_KERAS_RATIO
    print(f"{'PASS' if ok else 'FAIL'}  as exported (SavedModel, waveform [None, None], no XLA): genrenet "
          f"{ratio:.2f}x keras.layers.MelSpectrogram (median of per-round ratios, range {per_round.min():.2f}-"
          f"{per_round.max():.2f}; {_util.median(ours):.1f} vs {_util.median(keras_rates):.1f} clips/s; "
          f"target >= {TARGET_EXPORTED_KERAS_RATIO:.1f}x)")
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=32, help="clips per repetition (default 32)")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions; the median is reported")
    p.add_argument("--batch", type=int, default=32, help="clips per call for the in-graph methods (default 32)")
    p.add_argument("--seconds", type=float, default=30.0, help="clip length in seconds (default 30)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    p.add_argument("--breakdown", action="store_true", help="also time genrenet's layer stopped after each step "
                   "(window + RFFT, power, mel): where its time goes relative to the ceiling")
    p.add_argument("--methods", default="", help="comma-separated parts of method names: time only the methods "
                   "whose name contains one (the ceiling and genrenet's layer always run), e.g. 'exported' for the "
                   "as-exported pair alone; a round of fewer methods leaves less of the others' memory and cache "
                   "state to the next one")
    p.add_argument("--allocator", choices=("system", "bfc"), default="system",
                   help="TensorFlow's CPU allocator for every method: system malloc, or TF's caching BFC allocator")
    args = p.parse_args(argv)
    if args.allocator == "bfc":
        if "tensorflow" in sys.modules:
            raise SystemExit("--allocator bfc must be chosen before TensorFlow is imported")
        os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"

    import tensorflow as tf

    from genrenet.nn.frontend import FeatureConfig

    cfg = FeatureConfig()  # 22050 Hz, n_fft 2048, hop 512, 128 slaney mels, dB with top_db 80
    _util.print_machine("genrenet front-end benchmark")
    print(f"config: {args.clips} clips x {args.seconds:g} s at {cfg.sample_rate} Hz, n_fft {cfg.n_fft}, "
          f"hop {cfg.hop_length}, {cfg.n_mels} {cfg.mel_scale} mels, dB; batch {args.batch}, "
          f"median of {args.repeats} interleaved repetitions")
    clips = make_clips(args.clips, args.seconds, cfg.sample_rate)
    np_batches = [clips[i:i + args.batch] for i in range(0, len(clips), args.batch)]
    tf_batches = [tf.constant(b) for b in np_batches]

    with tempfile.TemporaryDirectory(prefix="genrenet-frontend-") as export_dir:
        methods = select(build_methods(cfg, export_dir, breakdown=args.breakdown), args.methods)
        return run_methods(args, methods, np_batches, tf_batches)


def select(methods: dict, parts: str) -> dict:
    """The methods whose name contains one of the comma-separated ``parts`` (all when empty), plus the ceiling
    and genrenet's layer in every mode, which the verdicts need."""
    wanted = [part.strip() for part in parts.split(",") if part.strip()]
    if not wanted:
        return methods
    always = ("bare frame+RFFT (ceiling)", "genrenet LogMelSpectrogram")
    return {name: m for name, m in methods.items()
            if m[0] in always or any(part in name for part in wanted)}


def run_methods(args, methods, np_batches, tf_batches) -> int:
    """Time ``methods`` interleaved on the batches, print the table and the verdicts; 0 when every verdict passes."""
    sizes = [len(b) for b in np_batches]
    # each method gets the batch type its users would pass: tensors for TF, arrays for numpy/torch
    calls = {}
    for name, (group, mode, fn) in methods.items():
        numpy_input = mode in ("numpy", "torch")
        calls[name] = (lambda b, fn=fn, np_in=numpy_input: fn(np_batches[b] if np_in else tf_batches[b]))
    for name, call in calls.items():  # trace / compile / warm caches
        call(0)
        call(len(np_batches) - 1)

    memory, how = {}, None
    if not args.no_memory:
        for name, call in calls.items():
            memory[name], how = _util.peak_memory_mb(lambda call=call: call(0))

    rates = _util.time_interleaved(calls, list(range(len(np_batches))), args.repeats, sizes)
    med = {name: _util.median(r) for name, r in rates.items()}

    def best(group):
        names = [n for n in methods if methods[n][0] == group]
        top = max(names, key=lambda n: med[n])
        return top, med[top]

    g_name, g_rate = best("genrenet LogMelSpectrogram")
    c_name, c_rate = best("bare frame+RFFT (ceiling)")

    rows = []
    for name in sorted(methods, key=lambda n: -med[n]):
        r = rates[name]
        rows.append([name, f"{med[name]:.1f}", f"{r.min():.0f}-{r.max():.0f}", f"{med[name] / c_rate:.2f}",
                     f"{g_rate / med[name]:.2f}",
                     "" if name not in memory else f"{memory[name]:.0f}"])
    print()
    print(f"clips/s (higher is better); ratios use each method's median; 'genrenet ÷' uses genrenet's best mode "
          f"({g_name})")
    _util.print_table(["method [mode]", "clips/s", "range", "÷ ceiling", "genrenet ÷",
                       f"peak MB / {args.batch}-clip call"], rows)
    if how:
        print(f"peak memory: {how}, one call after warm-up")

    print()
    ok_all = exported_verdict(rates)
    ratio = g_rate / c_rate
    ok = ratio >= TARGET_CEILING_RATIO
    ok_all &= ok
    print(f"{'PASS' if ok else 'FAIL'}  genrenet full log-mel at {ratio:.1%} of the bare frame+RFFT ceiling "
          f"({g_rate:.1f} vs {c_rate:.1f} clips/s; target >= {TARGET_CEILING_RATIO:.0%})")
    groups = []
    for group, _, _ in methods.values():
        if group not in groups and group not in ("genrenet LogMelSpectrogram", "bare frame+RFFT (ceiling)") \
                and not group.startswith(STAGE):
            groups.append(group)
    for group in groups:
        p_name, p_rate = best(group)
        ok = g_rate > p_rate
        ok_all &= ok
        print(f"{'PASS' if ok else 'FAIL'}  genrenet {g_rate / p_rate:.2f}x {p_name} ({p_rate:.1f} clips/s)")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
