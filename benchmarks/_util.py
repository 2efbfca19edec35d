"""Small helpers the benchmarks share: machine description, interleaved timing, peak memory, tables.

Timing is *interleaved*: for every repetition, each batch is run through every method in turn, so a burst of
load from another process slows all methods alike and the ratios stay meaningful. Throughput is the median
over repetitions of (items / total time of that repetition).
"""
from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys
import time
from typing import Callable, Dict, Sequence

import numpy as np


def machine_info() -> Dict[str, str]:
    """CPU model, core count, load, OS and library versions: print it next to every result."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    try:
        load = os.getloadavg()
        info["load average (1/5/15 min)"] = " / ".join(f"{v:.2f}" for v in load)
    except OSError:
        pass
    for name in ("numpy", "tensorflow", "keras", "librosa", "torch", "torchaudio", "kapre"):
        mod = sys.modules.get(name)
        if mod is not None:
            info[name] = getattr(mod, "__version__", "?")
    for var in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_XLA_FLAGS",
                "TF_CPU_ALLOCATOR_USE_BFC"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def print_machine(title: str) -> None:
    print(f"== {title} ==")
    for k, v in machine_info().items():
        print(f"  {k}: {v}")
    try:
        if os.getloadavg()[0] > (os.cpu_count() or 1):
            print("  NOTE: load average above the core count: other processes share this CPU; "
                  "absolute numbers are low, the interleaved ratios are what to read.")
    except OSError:
        pass
    print()


def time_interleaved(methods: Dict[str, Callable], batches: Sequence, repeats: int,
                     items_per_batch: Sequence[int]) -> Dict[str, np.ndarray]:
    """Run every method on every batch, interleaved; returns items/s per repetition for each method.

    Each method is a callable ``f(batch)`` that returns only once its result is computed.
    """
    total_items = float(sum(items_per_batch))
    seconds = {name: np.zeros(repeats) for name in methods}
    for rep in range(repeats):
        for batch in batches:
            for name, fn in methods.items():
                t0 = time.perf_counter()
                fn(batch)
                seconds[name][rep] += time.perf_counter() - t0
    return {name: total_items / s for name, s in seconds.items()}


def median(values) -> float:
    return float(np.median(np.asarray(values)))


_LIBC = None


def _malloc_trim() -> None:
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory_mb(fn: Callable[[], object]) -> tuple[float | None, str]:
    """Peak resident memory (MB) that ``fn()`` adds above the RSS before the call, and how it was measured.

    Uses Linux's resettable high-water mark (``/proc/self/clear_refs`` ← 5, then ``VmHWM`` − ``VmRSS``)
    after returning freed heap to the OS (``malloc_trim``), so it sees TensorFlow's allocator and numpy
    alike. Run ``fn`` once before (tracing/compiling) so only the computation is measured. Falls back to
    tracemalloc (numpy/Python allocations only) where /proc is not available.
    """
    gc.collect()
    _malloc_trim()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status_kb("VmRSS")
        result = fn()
        del result
        peak = _status_kb("VmHWM")
        if base is not None and peak is not None:
            return max(0.0, (peak - base) / 1024.0), "RSS high-water mark above the RSS before the call"
    except OSError:
        pass
    import tracemalloc

    tracemalloc.start()
    result = fn()
    del result
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, "tracemalloc peak (Python/numpy allocations only)"


def print_table(headers: Sequence[str], rows: Sequence[Sequence], align: str | None = None) -> None:
    """A plain-text table; ``align`` is one of 'l'/'r' per column (default: first left, others right)."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def fmt(row):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align))

    print(fmt(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(fmt(row))
