"""Decoded audio's size and its disk cache: ``cache="auto"`` (:class:`~genrenet.data.cache.CachePolicy`) keeps it in
memory when it fits comfortably, else on disk (:class:`AudioCache`) in ``<cache root>/audio``, which
``genrenet cache`` shows and clears.

Decoded audio is large: 30 s at 22 050 Hz in float32 is 2.6 MB, so GTZAN (1 000 clips) takes 2.6 GB and FMA
medium (25 000 clips) 66 GB. The estimate comes from the durations read from the headers when the dataset was
loaded, so the choice is made before any file is decoded, not after an epoch of decoding.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import threading

import numpy as np

BYTES_PER_SAMPLE = 4  # float32
COMPRESSED_BYTES_PER_SECOND = 16_000  # 128 kbit/s: a clip's length estimated from its file size, when unknown


def available_memory() -> int:
    """Bytes of memory this process may still use: ``MemAvailable``, or less under a cgroup (container) limit."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            available = min(available, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return available


def decoded_bytes(clips, sample_rate: int) -> int:
    """Estimated bytes of the clips' decoded audio at ``sample_rate`` (durations from their headers; a clip
    without one is estimated from its file size)."""
    seconds = 0.0
    for clip in clips:
        duration = clip.duration
        if duration is None and clip.path:
            try:
                duration = os.path.getsize(clip.path) / COMPRESSED_BYTES_PER_SECOND
            except OSError:
                duration = 0.0
        seconds += duration or 0.0
    return int(seconds * sample_rate * BYTES_PER_SAMPLE)


def gigabytes(n: float) -> str:
    """``n`` bytes for people: ``2.6 GB``, ``310 MB``."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def cache_key(clip, sample_rate: int) -> str:
    """Changes when the file (path, size, mtime), the clip's in-memory audio or the sample rate changes."""
    h = hashlib.sha1(f"genrenet-audio-v1|{sample_rate}|".encode())
    if clip.audio is not None:
        h.update(f"{clip.id}|{clip.sample_rate}|".encode())
        h.update(np.ascontiguousarray(clip.audio).tobytes())
    elif clip.path is None:  # audio read from a prepared record (tfrecord:PREFIX): its fields say which
        h.update(repr(clip).encode("utf-8", "surrogateescape"))
    else:
        path = os.path.realpath(clip.path)
        try:
            st = os.stat(path)
            h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{path}|missing".encode())
    return h.hexdigest()


class AudioCache:
    """Decoded, resampled audio on disk: ``DIR/<key[:2]>/<key>.npy`` (or ``.err`` with the reason a file
    could not be decoded, so that later runs report it again without decoding). Safe to share between runs
    and processes (atomic writes); a changed file or sample rate gets a new key."""

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)

    def file(self, key, ext) -> str:
        """Where the entry ``key`` lives (``.npy`` audio, ``.err`` reason)."""
        return os.path.join(self.directory, key[:2], key + ext)

    def get(self, key):
        """(audio or None, error reason or None); (None, None) when absent."""
        npy = self.file(key, ".npy")
        if os.path.exists(npy):
            try:
                return np.load(npy, allow_pickle=False), None
            except (OSError, ValueError):
                pass  # unreadable cache entry: decode again
        err = self.file(key, ".err")
        if os.path.exists(err):
            with open(err, encoding="utf-8") as f:
                return None, f.read()
        return None, None

    def _write(self, key, ext, writer):
        final = self.file(key, ext)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = f"{final}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "wb") as f:
                writer(f)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def entries(self) -> list:
        """Every entry file: decoded audio (``.npy``) and remembered failures (``.err``)."""
        return sorted(glob.glob(os.path.join(self.directory, "??", "*.npy"))
                      + glob.glob(os.path.join(self.directory, "??", "*.err")))

    def clear(self) -> tuple:
        """Remove every entry (and the emptied subfolders); other files are left alone. Returns ``(entries
        removed, bytes freed)``. A run reading the cache meanwhile decodes what it no longer finds."""
        removed = freed = 0
        for path in self.entries():
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another process
                freed += os.path.getsize(path)
                os.remove(path)
                removed += 1
        for sub in glob.glob(os.path.join(self.directory, "??")):
            with contextlib.suppress(OSError):  # not empty: it holds files that are not ours
                os.rmdir(sub)
        return removed, freed

    def put(self, key, audio):
        """Store decoded audio for ``key`` (written atomically)."""
        self._write(key, ".npy", lambda f: np.save(f, audio.astype(np.float32, copy=False), allow_pickle=False))

    def put_error(self, key, reason):
        """Remember that ``key`` failed to decode, so later epochs and runs skip it without retrying."""
        self._write(key, ".err", lambda f: f.write(reason.encode("utf-8")))
