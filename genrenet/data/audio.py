"""Decoding and resampling: soundfile (wav/flac/ogg/mp3/au/aiff) and soxr, mono float32 at the model's rate."""
from __future__ import annotations

import os
import re
import stat

import numpy as np

from ..errors import AudioError
from .quiet import decoder_noise_filtered
from .skips import NotMusic

AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".w64", ".caf", ".snd")

# A decoded file longer than this is refused rather than allocated (a corrupt header can claim days).
MAX_SECONDS = 4 * 3600
# Audio formats libsndfile does not read: such files are skipped with what to do about them.
UNSUPPORTED_EXTENSIONS = (".m4a", ".aac", ".mp4", ".wma", ".ape", ".alac", ".amr", ".webm", ".mka", ".ra")
READ_FORMATS = "WAV, FLAC, Ogg, MP3, AIFF or AU"
# libsndfile's words for a file whose content is no format it knows.
NOT_AUDIO = ("Format not recognised", "unknown format", "possibly a pipe", "not a regular file")
DAMAGED = ("No 'data' chunk", "truncated", "premature", "end of file", "Unexpected end", "Error in ", "Malformed")


def unsupported_format(path) -> str | None:
    """``.m4a: unsupported format; convert with ffmpeg ...`` for a format libsndfile cannot read, else None."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in UNSUPPORTED_EXTENSIONS:
        return None
    return f"{ext}: unsupported format; convert with ffmpeg (e.g. ffmpeg -i song{ext} song.flac)"


def decode_reason(path, error: BaseException) -> str:
    """The plain reason a decoder failed on ``path``: empty file, permission denied, unsupported format (with
    the fix), not audio, truncated or damaged; else the decoder's own words without its file name."""
    if isinstance(error, PermissionError):
        return "permission denied (cannot read the file)"
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return f"cannot open ({e.strerror or type(e).__name__})"
    if size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "permission denied (cannot read the file)"
    text = str(error).strip()
    if unsupported_format(path):
        return unsupported_format(path)
    if any(words in text for words in NOT_AUDIO):
        return f"not audio (not a {READ_FORMATS} file)"
    if any(words in text for words in DAMAGED):
        return "truncated or damaged (its header or data is cut short or broken)"
    if "System error" in text:
        return "cannot read the file (system error)"
    text = re.sub(r"^Error opening .*?: ", "", text)
    return f"cannot decode ({text or type(error).__name__})"



def is_audio_file(path) -> bool:
    """True when ``path`` has an extension genrenet decodes (libsndfile formats and mp3)."""
    return str(path).lower().endswith(AUDIO_EXTENSIONS)


def resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality); a no-op when the rates agree."""
    if orig_rate == target_rate or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(audio, orig_rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """[samples, channels] or [samples] → [samples], averaging the channels.

    As a matrix-vector product, not ``mean(axis=1)``: numpy's reduction over a short inner axis took 8 ms per
    30-s stereo file (1.6 ms mono, more than decoding it); the product takes 0.2 ms and gives the same float32
    values for stereo."""
    if audio.ndim == 2:
        channels = audio.shape[1]
        if channels == 0:
            raise ValueError("the file has no channels")
        audio = audio[:, 0] if channels == 1 else audio @ np.full(channels, 1.0 / channels, audio.dtype)
    return audio.astype(np.float32, copy=False)


def unusable_path(path) -> str | None:
    """Why ``path`` cannot be opened as an audio file without risk (missing, a directory, a FIFO or device that
    would block or never end, a symlink loop), or None for a regular file."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        return "file not found" if not os.path.islink(path) else "is a broken symbolic link"
    except OSError as e:  # ELOOP (a symlink loop), EACCES, ENAMETOOLONG, ...
        return f"cannot open ({e.strerror or type(e).__name__})"
    if stat.S_ISDIR(mode):
        return "is a directory, not an audio file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe, socket or device)"
    return None


def read_header(path):
    """``soundfile.info`` of ``path`` (format, rate, frames) without reading its audio; decoder noise filtered."""
    import soundfile as sf

    with decoder_noise_filtered(path):
        return sf.info(os.fsencode(os.fspath(path)))


def load_audio(path, sample_rate: int, *, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``. Raises :class:`AudioError` on anything unusable."""
    import soundfile as sf

    path = os.fspath(path)
    reason = unusable_path(path)
    if reason:
        raise AudioError(path, reason)
    try:
        with decoder_noise_filtered(path), sf.SoundFile(os.fsencode(path)) as f:  # bytes: any file name
            if f.channels < 1:
                raise AudioError(path, "the file has no channels")
            if f.samplerate <= 0:
                raise AudioError(path, f"invalid sample rate {f.samplerate}")
            if f.frames > max_seconds * f.samplerate:
                raise AudioError(path, f"declares {f.frames / f.samplerate:.0f} s of audio, more than the "
                                       f"{max_seconds:.0f} s limit")
            audio = f.read(dtype="float32", always_2d=True)
            rate, frames = f.samplerate, audio.shape[0]
    except AudioError:
        raise
    except Exception as e:  # libsndfile's errors are RuntimeError/TypeError/ValueError/LibsndfileError
        raise AudioError(path, decode_reason(path, e)) from None
    if audio.shape[0] == 0:
        raise AudioError(path, "contains no audio (zero length)")
    audio = to_mono(audio)
    if not np.all(np.isfinite(audio)):
        raise AudioError(path, NotMusic("contains NaN or infinite samples"))
    audio = resample(audio, rate, sample_rate)
    if audio.size == 0:
        raise AudioError(path, f"is too short ({frames} samples at {rate} Hz is less than one sample at "
                               f"{sample_rate} Hz)")
    return audio


def stream_audio(path, sample_rate: int, *, block_seconds: float = 20.0, max_seconds: float = MAX_SECONDS):
    """Decode ``path`` block by block: yields mono float32 chunks at ``sample_rate`` whose concatenation is the
    file (as :func:`load_audio` gives it, up to resampler rounding). Memory stays at one block, whatever the
    file's length. Raises :class:`AudioError` (possibly after some chunks) on anything unusable."""
    import soundfile as sf

    path = os.fspath(path)
    reason = unusable_path(path)
    if reason:
        raise AudioError(path, reason)
    try:
        with decoder_noise_filtered(path):
            f = sf.SoundFile(os.fsencode(path))
    except Exception as e:
        raise AudioError(path, decode_reason(path, e)) from None
    with f:
        if f.channels < 1:
            raise AudioError(path, "the file has no channels")
        if f.samplerate <= 0:
            raise AudioError(path, f"invalid sample rate {f.samplerate}")
        rate, limit = f.samplerate, max_seconds * f.samplerate
        if f.frames > limit:
            raise AudioError(path, f"declares {f.frames / rate:.0f} s of audio, more than the {max_seconds:.0f} s "
                                   "limit")
        resampler = None
        if rate != sample_rate:
            import soxr

            resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
        block, frames = max(1, int(block_seconds * rate)), 0
        while True:
            try:
                with decoder_noise_filtered(path):
                    audio = f.read(block, dtype="float32", always_2d=True)
            except Exception as e:
                raise AudioError(path, decode_reason(path, e)) from None
            frames += audio.shape[0]
            if frames > limit:
                raise AudioError(path, f"is longer than the {max_seconds:.0f} s limit")
            last = audio.shape[0] < block
            mono = to_mono(audio)
            if not np.all(np.isfinite(mono)):
                raise AudioError(path, NotMusic("contains NaN or infinite samples"))
            out = resampler.resample_chunk(mono, last=last) if resampler is not None else mono
            if out.size:
                yield out.astype(np.float32, copy=False)
            if last:
                break
        if frames == 0:
            raise AudioError(path, "contains no audio (zero length)")
