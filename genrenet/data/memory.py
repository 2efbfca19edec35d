"""Where decoded audio is cached during training: ``cache="auto"`` keeps it in memory when it fits comfortably,
else on disk in a per-user cache directory.

Decoded audio is large: 30 s at 22 050 Hz in float32 is 2.6 MB, so GTZAN (1 000 clips) takes 2.6 GB and FMA
medium (25 000 clips) 66 GB. The estimate comes from the durations read from the headers when the dataset was
loaded, so the choice is made before any file is decoded, not after an epoch of decoding.
"""
from __future__ import annotations

import os
import shutil
from typing import Optional

MEMORY_SHARE = 0.5  # decoded audio may take up to this share of the memory available to the process
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


def default_cache_dir() -> str:
    """``$GENRENET_CACHE_DIR``, else ``$XDG_CACHE_HOME/genrenet/audio`` (``~/.cache/genrenet/audio``)."""
    if os.environ.get("GENRENET_CACHE_DIR"):
        return os.path.expanduser(os.environ["GENRENET_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "genrenet", "audio")


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


def choose_cache(cache, clips, sample_rate: int, *, memory_budget: Optional[int] = None) -> tuple:
    """``(cache, note)``: ``cache`` as given unless it is ``"auto"``, which becomes ``"memory"`` when the
    clips' decoded audio takes at most ``memory_budget`` bytes (default: half the memory available), else the
    :func:`default_cache_dir`; ``note`` says where and how large (None when memory was chosen or nothing
    was asked)."""
    if cache != "auto":
        return cache, None
    need = decoded_bytes(clips, sample_rate)
    budget = int(MEMORY_SHARE * available_memory()) if memory_budget is None else int(memory_budget)
    if need <= budget:
        return "memory", None
    directory = default_cache_dir()
    os.makedirs(directory, exist_ok=True)
    free = shutil.disk_usage(directory).free
    room = "" if free >= need else (f"; only {gigabytes(free)} free there: clips that do not fit are decoded every "
                                    "epoch (GENRENET_CACHE_DIR or cache=DIR / --cache DIR choose another place)")
    return directory, (f"the decoded audio (~{gigabytes(need)}) is more than the memory budget ({gigabytes(budget)}): "
                       f"caching it on disk in {directory} (reused by later runs, delete it to free the space)"
                       + room)
