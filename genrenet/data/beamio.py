"""What genrenet's Apache Beam pipelines share: the import with an install hint, pipeline options, matching file
patterns through Beam's FileSystems (local paths; gs:// and s3:// with their Beam extras) and reading any matched
file as a local one, so that genrenet's own decoder (:func:`~genrenet.data.audio.load_audio`) reads it."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from ..errors import MissingDependencyError
from .audio import is_audio_file

try:
    import apache_beam as beam
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("Apache Beam pipelines need apache-beam: pip install 'genrenet[beam]'") from None

GLOB_CHARACTERS = "*?["


def pipeline_options(runner: str, beam_args=()) -> PipelineOptions:
    """Beam's options from ``--runner`` and the command line's other Beam flags (``--project``, ``--region``,
    ``--temp_location``, ``--setup_file``, ``--direct_num_workers`` ...)."""
    return PipelineOptions(["--runner", runner, *beam_args])


def is_local(path: str) -> bool:
    """True for paths of the local file system (no ``scheme://``)."""
    return "://" not in path or path.startswith("file://")


def match_pattern(pattern: str):
    """``(path, None)`` for every file ``pattern`` matches (a local folder: its audio files, recursively), or one
    ``(pattern, reason)`` when it matches nothing, so no pattern disappears without a word."""
    if is_local(pattern) and os.path.isdir(pattern):
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(pattern) for f in fs if is_audio_file(f))
        return [(f, None) for f in files] or [(pattern, "folder contains no audio files")]
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception as e:  # a bucket that does not exist, no credentials, an unknown scheme
        detail = str(e).strip().splitlines()[0] if str(e).strip() else "unknown error"
        return [(pattern, f"cannot list ({type(e).__name__}: {detail})")]
    if not found:
        return [(pattern, "no files match" if any(c in pattern for c in GLOB_CHARACTERS) else "file not found")]
    return [(m.path, None) for m in sorted(found, key=lambda m: m.path)]


@contextlib.contextmanager
def local_file(path: str):
    """``path`` itself when local, else a temporary local copy (same extension, for the decoder) removed after."""
    if is_local(path):
        yield path[len("file://"):] if path.startswith("file://") else path
        return
    suffix = os.path.splitext(path)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
            shutil.copyfileobj(src, tmp, 1 << 20)
        tmp.flush()
        yield tmp.name


def write_bytes(path: str, data: bytes):
    """Write ``data`` to ``path`` on any Beam file system."""
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)


def copy_to(local_path: str, path: str):
    """Copy a local file to ``path`` on any Beam file system."""
    with open(local_path, "rb") as src, FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        shutil.copyfileobj(src, f, 1 << 20)


def read_text(path: str) -> str:
    """The text of ``path`` on any Beam file system."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode("utf-8")


__all__ = ["beam", "FileSystems", "copy_to", "is_local", "local_file", "match_pattern", "pipeline_options",
           "read_text", "write_bytes"]
