"""Loading a large folder: files/s of reading the headers with the thread pool against one thread, and the
peak memory of the clip list.

    python -m benchmarks.dataset_scan [--files 20000] [--threads 16] [--repeats 3]

Writes ``--files`` short WAVs (0.5 s, two class folders) and times ``load_dataset``'s two steps: listing the
files (:func:`~genrenet.data.sources.folder.class_folder_files`) and reading their headers
(:func:`~genrenet.data.sources.base.scan`), with ``--threads`` threads and with one, interleaved (the files
are in the page cache after the first pass: this measures the CPU side; on network storage threads also
overlap the waits). Then the peak memory of ``load_dataset`` and the bytes per clip.
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

import numpy as np

from benchmarks._util import median, peak_memory_mb, print_machine, print_table


def write_folder(root, n):
    """``n`` copies of one 0.5-s WAV in two class folders (file contents do not matter to a header scan)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, (0.1 * np.sin(np.arange(11025) / 5)).astype(np.float32), 22050, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    for label in ("a", "b"):
        os.makedirs(os.path.join(root, label), exist_ok=True)
    for i in range(n):
        with open(os.path.join(root, "ab"[i % 2], f"{i:06d}.wav"), "wb") as f:
            f.write(data)


def main(argv=None):
    from genrenet.data import load_dataset
    from genrenet.data.sources.base import scan
    from genrenet.data.sources.folder import class_folder_files

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    print_machine(f"reading the headers of {args.files} files")
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(tmp, args.files)
        list_s, rates = [], {args.threads: [], 1: []}
        for _ in range(args.repeats):
            for threads in rates:
                t = time.perf_counter()
                candidates, _, _, _ = class_folder_files(tmp)
                listed = time.perf_counter()
                clips, skipped = scan(candidates, threads=threads)
                rates[threads].append(len(candidates) / (time.perf_counter() - listed))
                list_s.append(listed - t)
                assert len(clips) == args.files and not skipped
        peak, how = peak_memory_mb(lambda: load_dataset(tmp))
    one = median(rates[1])
    rows = [[f"{threads} thread{'s' * (threads > 1)}", f"{median(r):.0f}", f"{median(r) / one:.2f}",
             f"{args.files / median(r):.1f}"] for threads, r in rates.items()]
    print_table(["header scan", "files/s (median)", "vs 1 thread", f"s per {args.files} files"], rows)
    print(f"\nlisting the folder: {median(list_s):.2f} s (median)")
    print(f"peak memory of load_dataset ({args.files} clips): {peak:.1f} MB = {peak * 2**20 / args.files:.0f} "
          f"bytes per clip ({how})")


if __name__ == "__main__":
    main()
