"""Audio in the served graph, in core TF ops only: WAV decoding, mono mix-down and band-limited resampling.

These functions run inside exported SavedModels (``classify_wav``), so they must not use numpy, soxr or any
op outside core TensorFlow (TF Serving and ``saved_model_cli`` load nothing else).

Resampling (:func:`resample`) is FFT-based: with ``g = gcd(orig, target)``, ``L = target/g``, ``M = orig/g``,
the signal is zero-padded to ``n_in = M·q`` samples (at least 0.1 s of silence after the end, so the circular
FFT does not wrap the end onto the start), its spectrum is cut (or zero-extended) to the ``n_out = L·q``-point
grid, multiplied by a raised-cosine taper over the top 10 % of the band below ``min(orig, target)/2`` (so
there is no brick-wall ringing, like soxr's HQ pass-band), and inverted. Because ``n_out/n_in == L/M``
exactly, output sample ``k`` lies at input time ``k·M/L`` (no drift over long files). The output length
is ``round(N·target/orig)``, as soxr's.

``tf.audio.decode_wav`` reads only **16-bit PCM** WAV (format tag 1, a 16- or 18-byte ``fmt`` chunk, any
number of channels, any rate). 8/24/32-bit PCM, float and WAVE_FORMAT_EXTENSIBLE files are refused with
InvalidArgument; convert them client-side (``genrenet.serve.rest.wav_bytes`` does).
"""
from __future__ import annotations

import math

import tensorflow as tf

TAPER = 0.1        # fraction of the shared band (below min(orig, target)/2) rolled off with a raised cosine
PAD_SECONDS = 0.1  # silence appended before the FFT so its circular wrap-around lands in zeros


def _gcd(a, b):
    """Greatest common divisor of two positive int64 scalars (Euclid in a tf.while_loop)."""
    a, b = tf.while_loop(lambda a, b: b > 0, lambda a, b: (b, tf.math.floormod(a, b)), (a, b))
    return a


def resample(x, orig_rate, target_rate: int):
    """Band-limited resampling of a 1-D float32 signal from ``orig_rate`` (a scalar tensor) to ``target_rate``."""
    x = tf.convert_to_tensor(x, tf.float32)
    orig = tf.cast(orig_rate, tf.int64)
    target = tf.constant(int(target_rate), tf.int64)
    tf.debugging.assert_positive(orig, message="the WAV declares a sample rate ≤ 0")

    def identity():
        return x

    def convert():
        n = tf.cast(tf.shape(x)[0], tf.int64)
        g = _gcd(orig, target)
        up, down = target // g, orig // g
        out_len = (n * up + down // 2) // down                      # round(N·target/orig), like soxr
        pad = tf.cast(tf.math.ceil(PAD_SECONDS * tf.cast(orig, tf.float32)), tf.int64)
        q = (n + pad + down - 1) // down
        # round q up so that q = m·2^k with m < 32: FFT sizes M·q and L·q stay smooth, ≤ 3 % waste
        k = tf.maximum(tf.cast(tf.math.floor(tf.math.log(tf.cast(q, tf.float32)) / math.log(2.0)), tf.int64) - 5, 0)
        step = tf.bitwise.left_shift(tf.constant(1, tf.int64), k)
        q = (q + step - 1) // step * step
        n_in, n_out = down * q, up * q
        spec = tf.signal.rfft(tf.pad(x, [[0, n_in - n]]), fft_length=tf.cast(tf.reshape(n_in, [1]), tf.int32))
        bins_out = n_out // 2 + 1
        keep = tf.minimum(tf.shape(spec, out_type=tf.int64)[0], bins_out)
        # taper: 1 below (1 - TAPER)·cutoff, raised cosine down to 0 at the cutoff (min of both Nyquists)
        cutoff = tf.cast(tf.minimum(n_in, n_out), tf.float32) / 2.0     # in bins (same bin width both sides)
        freq = tf.cast(tf.range(keep), tf.float32)
        ramp = tf.clip_by_value((freq - (1.0 - TAPER) * cutoff) / (TAPER * cutoff), 0.0, 1.0)
        gain = 0.5 * (1.0 + tf.cos(math.pi * ramp)) * (tf.cast(n_out, tf.float32) / tf.cast(n_in, tf.float32))
        spec = spec[:keep] * tf.cast(gain, tf.complex64)
        spec = tf.pad(spec, [[0, bins_out - keep]])
        y = tf.signal.irfft(spec, fft_length=tf.cast(tf.reshape(n_out, [1]), tf.int32))
        return y[:out_len]

    return tf.cond(tf.equal(orig, target), identity, convert)


def assert_wav_chunks(wav_bytes):
    """InvalidArgument, in plain words, for bytes that are not a RIFF/WAVE file or whose chunk ids up to the
    ``data`` chunk are not printable: ``decode_wav`` would otherwise put those raw bytes into its message, which
    Python cannot decode (a ``UnicodeDecodeError`` instead of the InvalidArgument error)."""
    size = tf.strings.length(wav_bytes)
    padded = tf.strings.join([wav_bytes, tf.constant(b"\0" * 16)])  # every read below stays in range
    riff = tf.logical_and(tf.equal(tf.strings.substr(padded, 0, 4), "RIFF"),
                          tf.equal(tf.strings.substr(padded, 8, 4), "WAVE"))
    check = tf.debugging.Assert(tf.logical_and(size >= 12, riff), ["not a WAV file (no RIFF/WAVE header)"])

    def more(offset, ok):
        inside = offset + 4 <= size  # decode_wav reads an id even when no size follows it
        return tf.logical_and(ok, tf.logical_and(inside, tf.not_equal(
            tf.strings.substr(padded, tf.minimum(offset, size), 4), "data")))

    def step(offset, ok):
        printable = tf.strings.regex_full_match(tf.strings.substr(padded, offset, 4), "[ -~]{4}")
        digits = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, offset + 4, 4), tf.uint8), tf.int64)
        length = tf.reduce_sum(digits * tf.constant([1, 1 << 8, 1 << 16, 1 << 24], tf.int64))
        length = tf.cast(tf.minimum(length, tf.cast(size, tf.int64)), tf.int32)
        return offset + 8 + length + length % 2, printable

    with tf.control_dependencies([check]):
        _, ok = tf.while_loop(more, step, [tf.constant(12), tf.constant(True)])
    return tf.debugging.Assert(ok, ["not a WAV file: a chunk id is not text (corrupt, or not a WAV)"])


def decode_wav_mono(wav_bytes, target_rate: int):
    """One WAV file (scalar string) → mono float32 [samples] at ``target_rate``.

    Raises InvalidArgument for bytes that are not a 16-bit PCM WAV (random bytes included), and for a WAV with no
    samples.
    """
    with tf.control_dependencies([assert_wav_chunks(wav_bytes)]):
        audio, rate = tf.audio.decode_wav(wav_bytes)            # [samples, channels] in [-1, 1), rate int32
    tf.debugging.assert_positive(tf.shape(audio)[0], message="the WAV file contains no samples")
    mono = tf.reduce_mean(audio, axis=1)
    return resample(mono, rate, target_rate)


def decode_wav_batch(wav_bytes, target_rate: int):
    """A [batch] string tensor of WAV files → (padded waveforms [batch, max_len], lengths int32 [batch])."""
    ragged = tf.map_fn(lambda b: decode_wav_mono(b, target_rate), wav_bytes,
                       fn_output_signature=tf.RaggedTensorSpec(shape=[None], dtype=tf.float32, ragged_rank=0))
    return ragged.to_tensor(), tf.cast(ragged.row_lengths(), tf.int32)
