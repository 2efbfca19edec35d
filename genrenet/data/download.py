"""Download, verify and extract the public datasets: ``genrenet download gtzan|fma_small|fma_medium|fma_metadata
--dir DIR``.

Downloads resume (HTTP Range) from ``DIR/<archive>.part`` after an interruption, are verified against the
published checksum before anything is extracted, and show progress on stderr. A mismatch is an error and the bad
file is kept as ``<archive>.bad`` (so a retry starts afresh) — never extracted. Nothing here runs in the tests
against the real hosts: they use a local server.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from typing import Optional, Sequence

from ..errors import DownloadError
from .progress import Progress

CHUNK = 1 << 20

# FMA: sha1 published in https://github.com/mdeff/fma (README, "History", 2017-05-09 release).
# GTZAN: no checksum is published by its authors; the md5 is the one mirdata's gtzan_genre loader verifies for
# the original Marsyas archive (the original host is often offline; the Hugging Face copy is the same archive).
DATASETS = {
    "gtzan": {
        "urls": ["http://opihi.cs.uvic.ca/sound/genres.tar.gz",
                 "https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz"],
        "filename": "genres.tar.gz", "md5": "5b3d6dddb579ab49814ab86dba69e7c7", "size": "1.2 GB",
        "spec": "gtzan:{dir}", "extracts": "genres",
    },
    "fma_metadata": {
        "urls": ["https://os.unil.cloud.switch.ch/fma/fma_metadata.zip"],
        "filename": "fma_metadata.zip", "sha1": "f0df49ffe5f2a6008d7dc83c6915b31835dfe733", "size": "342 MiB",
        "spec": "fma:{dir}", "extracts": "fma_metadata",
    },
    "fma_small": {
        "urls": ["https://os.unil.cloud.switch.ch/fma/fma_small.zip"],
        "filename": "fma_small.zip", "sha1": "ade154f733639d52e35e32f5593efe5be76c6d70", "size": "7.2 GiB",
        "spec": "fma:{dir}?subset=small", "extracts": "fma_small", "needs": "fma_metadata",
    },
    "fma_medium": {
        "urls": ["https://os.unil.cloud.switch.ch/fma/fma_medium.zip"],
        "filename": "fma_medium.zip", "sha1": "c67b69ea232021025fca9231fc1c7c1a063ab50b", "size": "22 GiB",
        "spec": "fma:{dir}?subset=medium", "extracts": "fma_medium", "needs": "fma_metadata",
    },
}




def file_digest(path: str, algorithm: str) -> str:
    """Hex digest of a file with ``algorithm`` (e.g. ``md5``, ``sha1``), read in blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, dest: str, *, checksum: Optional[tuple] = None, progress: bool = True,
          timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest``, resuming ``dest + ".part"``; verify ``checksum = (algorithm, hexdigest)``.

    An existing ``dest`` with the right checksum is kept as it is. Returns ``dest``."""
    if os.path.exists(dest):
        if checksum is None or file_digest(dest, checksum[0]) == checksum[1]:
            return dest
        os.replace(dest, dest + ".bad")
    part = dest + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "genrenet-download"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part file is already complete
            response = None
        else:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: {getattr(e, 'reason', e)}") from None
    if response is not None:
        with response:
            status = getattr(response, "status", 200)
            if have and status != 206:  # the server ignored the Range header: start again
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            bar = Progress(total, label=os.path.basename(dest), unit="MiB", scale=2**20, done=have,
                           enabled=progress)
            try:
                with open(part, "ab" if have else "wb") as f:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        f.write(block)
                        bar.advance(len(block))
            except (OSError, urllib.error.URLError) as e:
                raise DownloadError(f"{url}: interrupted after {bar.done} bytes ({e}); run again to resume") from None
            finally:
                bar.close()
            if total is not None and os.path.getsize(part) < total:
                raise DownloadError(f"{url}: connection closed after {os.path.getsize(part)} of {total} bytes; "
                                    "run again to resume")
    if checksum is not None:
        got = file_digest(part, checksum[0])
        if got != checksum[1]:
            os.replace(part, dest + ".bad")
            raise DownloadError(f"{os.path.basename(dest)}: {checksum[0]} checksum mismatch (expected "
                                f"{checksum[1]}, got {got}); kept as {dest}.bad, nothing extracted")
    os.replace(part, dest)
    return dest


def _safe_target(root: str, name: str) -> str:
    target = os.path.realpath(os.path.join(root, name))
    if not (target == os.path.realpath(root) or target.startswith(os.path.realpath(root) + os.sep)):
        raise DownloadError(f"archive member {name!r} would be written outside {root}; refusing to extract")
    return target


def extract(archive: str, directory: str) -> None:
    """Extract a .zip or .tar(.gz) archive into ``directory`` (members outside it are refused)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for member in z.infolist():
                _safe_target(directory, member.filename)
            z.extractall(directory)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for member in members:
                _safe_target(directory, member.name)
                if member.issym() or member.islnk():
                    raise DownloadError(f"archive member {member.name!r} is a link; refusing to extract")
            t.extractall(directory, members=members)
    else:
        raise DownloadError(f"{archive}: neither a zip nor a tar archive")


def download(name: str, directory: str, *, urls: Optional[Sequence[str]] = None, checksum: Optional[tuple] = None,
             keep_archive: bool = True, progress: bool = True, verbose: bool = True) -> str:
    """Download dataset ``name`` (see :data:`DATASETS`) into ``directory``, verify it and extract it.

    ``urls``/``checksum`` override the registry (used by the tests with a local server). Returns the data spec
    to pass to ``train``/``evaluate``. Running it again after success does nothing; after an interruption it
    resumes."""
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    info = DATASETS[name]
    os.makedirs(directory, exist_ok=True)
    marker = os.path.join(directory, f".genrenet-{name}-extracted")
    spec = info["spec"].format(dir=directory)
    if os.path.exists(marker):
        _say(verbose, f"{name}: already downloaded and extracted in {directory}")
        return spec
    if checksum is None:
        checksum = ("sha1", info["sha1"]) if "sha1" in info else ("md5", info["md5"])
    dest = os.path.join(directory, info["filename"])
    errors = []
    for url in urls or info["urls"]:
        _say(verbose, f"{name}: downloading {url} ({info['size']}) to {dest}")
        try:
            fetch(url, dest, checksum=checksum, progress=progress)
            break
        except DownloadError as e:
            errors.append(str(e))
            if "checksum mismatch" in str(e):
                raise
            _say(verbose, f"  failed: {e}")
    else:
        raise DownloadError(f"{name}: every source failed: " + " | ".join(errors))
    _say(verbose, f"{name}: {checksum[0]} verified; extracting into {directory}")
    extract(dest, directory)
    with open(marker, "w") as f:
        f.write(f"{checksum[0]} {checksum[1]}\n")
    if not keep_archive:
        os.remove(dest)
    if "needs" in info and not os.path.exists(os.path.join(directory, f".genrenet-{info['needs']}-extracted")):
        _say(verbose, f"{name}: also needs {info['needs']}: genrenet download {info['needs']} --dir {directory}")
    _say(verbose, f"{name}: ready; use --data {spec}")
    return spec


def _say(verbose, text):
    if verbose:
        print(text, flush=True)


__all__ = ["DATASETS", "DownloadError", "download", "extract", "fetch", "file_digest"]
