"""Where genrenet caches things, and how a training run keeps decoded audio: one setting, resolved once.

One environment variable names the cache root: ``$GENRENET_CACHE`` (default ``$XDG_CACHE_HOME/genrenet``, i.e.
``~/.cache/genrenet``), with ``audio/`` (decoded audio, :class:`~genrenet.data.memory.AudioCache`) and
``presets/`` (materialised presets) below it. This module imports no TensorFlow, so that presets and the
``genrenet cache`` command can find the root without loading it.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Optional

from ..errors import ConfigError

ENV = "GENRENET_CACHE"
MODES = ("auto", "memory", "none")
LEGACY = {True: "memory", False: "none", None: "none"}  # booleans of earlier configs and the Python API
MEMORY_SHARE = 0.5  # decoded audio may take up to this share of the memory available to the process


def cache_root() -> str:
    """``$GENRENET_CACHE``, else ``$XDG_CACHE_HOME/genrenet`` (``~/.cache/genrenet``)."""
    if os.environ.get(ENV):
        return os.path.expanduser(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "genrenet")


def audio_cache_dir() -> str:
    """Where ``cache="auto"`` keeps decoded audio that does not fit in memory: ``<cache root>/audio``."""
    return os.path.join(cache_root(), "audio")


@dataclasses.dataclass(frozen=True)
class CachePolicy:
    """How a run keeps decoded audio between epochs: ``auto``, ``memory``, ``none`` or a directory on disk.

    Made once from the setting (:meth:`of`), resolved once for the data (:meth:`resolve`: ``auto`` becomes
    ``memory`` or a directory), then handed to every pipeline; ``str(policy)`` is what ``config.json`` holds."""

    where: str

    @classmethod
    def of(cls, value) -> "CachePolicy":
        """The policy of a setting: ``"auto" | "memory" | "none" | DIR`` (a path-like too), ``True``/``False``
        (memory/none), or a policy; anything else raises :class:`~genrenet.errors.ConfigError`."""
        if isinstance(value, CachePolicy):
            return value
        if isinstance(value, bool) or value is None:
            return cls(LEGACY[value])
        if isinstance(value, (str, os.PathLike)) and str(os.fspath(value)).strip():
            where = os.fspath(value)
            return cls(where if where in MODES else os.path.expanduser(where))
        raise ConfigError(f"must be auto, memory, none or a directory, got {value!r}", param="cache")

    @property
    def memory(self) -> bool:
        """Whether decoded audio stays in memory after the first pass."""
        return self.where == "memory"

    @property
    def directory(self) -> Optional[str]:
        """The directory of a disk cache, else None."""
        return None if self.where in MODES else self.where

    def __str__(self) -> str:
        return self.where

    def require_resolved(self) -> "CachePolicy":
        """This policy, unless it is still ``auto`` (which only :meth:`resolve` can decide)."""
        if self.where == "auto":
            raise ConfigError("cache='auto' must be resolved for the clips first (CachePolicy.resolve)")
        return self

    def resolve(self, clips, sample_rate: int, *, memory_budget: Optional[int] = None) -> tuple:
        """``(policy, note)``: ``auto`` becomes ``memory`` when the clips' decoded audio takes at most
        ``memory_budget`` bytes (default: half the memory available), else :func:`audio_cache_dir`; other
        policies stay. ``note`` says where and how large (None when nothing needs saying)."""
        from .memory import available_memory, decoded_bytes, gigabytes

        if self.where != "auto":
            return self, None
        need = decoded_bytes(clips, sample_rate)
        budget = int(MEMORY_SHARE * available_memory()) if memory_budget is None else int(memory_budget)
        if need <= budget:
            return CachePolicy("memory"), None
        directory = audio_cache_dir()
        os.makedirs(directory, exist_ok=True)
        free = shutil.disk_usage(directory).free
        room = "" if free >= need else (f"; only {gigabytes(free)} free there: clips that do not fit are decoded "
                                        f"every epoch ({ENV} or cache=DIR / --cache DIR choose another place)")
        return CachePolicy(directory), (
            f"the decoded audio (~{gigabytes(need)}) is more than the memory budget ({gigabytes(budget)}): "
            f"caching it on disk in {directory} (reused by later runs, delete it to free the space)" + room)
