"""One text field of an audio file's own tags, read and written with mutagen, without touching the audio.

Which tag a field is stored in depends on the file's tag system, and this module holds the one table of it
(:data:`FIELDS`). A value is a list of strings (several for multi-valued tags) or ``None`` when the file has no
such tag. :func:`write_field` never edits a file in place: it writes a copy in the same folder, checks that the
copy still decodes to exactly the same samples and reads back the new value, then renames the copy over the
original, so the file is either the old one or the new one at any moment.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Optional

from ..errors import AudioError, MissingDependencyError

# Tag system of each mutagen file type genrenet writes into.
SCHEMES = {"MP3": "id3", "WAVE": "id3", "AIFF": "id3", "FLAC": "vorbis", "OggVorbis": "vorbis",
           "OggOpus": "vorbis", "MP4": "mp4"}

# field → tag system → tag key (ID3 frame hash key, Vorbis comment name, MP4 atom).
FIELDS = {
    "genre": {"id3": "TCON", "vorbis": "GENRE", "mp4": "\xa9gen"},
    "grouping": {"id3": "TIT1", "vorbis": "GROUPING", "mp4": "\xa9grp"},
    "comment": {"id3": "COMM::eng", "vorbis": "COMMENT", "mp4": "\xa9cmt"},
}

SUPPORTED_FORMATS = "MP3, WAV and AIFF (ID3), FLAC, Ogg Vorbis and Opus (Vorbis comments), MP4/M4A"


def require_mutagen():
    """The mutagen module, or a :class:`~genrenet.errors.MissingDependencyError` saying how to install it."""
    try:
        import mutagen
    except ImportError:
        raise MissingDependencyError("writing tags needs mutagen: pip install 'genrenet[library]'") from None
    return mutagen


def open_tags(path):
    """The mutagen file of ``path``; :class:`~genrenet.errors.AudioError` when its format is not one genrenet
    writes tags into or mutagen cannot parse it."""
    mutagen = require_mutagen()
    from mutagen.aiff import AIFF
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    try:
        audio = mutagen.File(path, options=[MP3, WAVE, AIFF, FLAC, OggVorbis, OggOpus, MP4])
    except mutagen.MutagenError as e:
        raise AudioError(path, f"cannot read its tags ({e})") from None
    if audio is None:
        raise AudioError(path, f"unsupported format (tags are written into {SUPPORTED_FORMATS})")
    return audio


def scheme_of(audio) -> str:
    """``id3``, ``vorbis`` or ``mp4``: the tag system of a file opened by :func:`open_tags`."""
    return SCHEMES[type(audio).__name__]


def tag_key(audio, field: str) -> str:
    """The tag that holds ``field`` in this file (``TCON``, ``GENRE``, ``©gen``, ...)."""
    return FIELDS[field][scheme_of(audio)]


def read_field(audio, field: str) -> Optional[list]:
    """The field's values as strings, or ``None`` when the file has no such tag."""
    tags, key = audio.tags, tag_key(audio, field)
    if tags is None:
        return None
    if scheme_of(audio) == "id3":
        frames = tags.getall(key)
        return [str(t) for frame in frames for t in frame.text] if frames else None
    return [str(v) for v in tags[key]] if key in tags else None


def set_field(audio, field: str, values: Optional[list]) -> None:
    """Set the field to ``values`` (``None``: remove the tag); every other tag is left as it is."""
    if audio.tags is None:
        audio.add_tags()
    tags, key = audio.tags, tag_key(audio, field)
    if scheme_of(audio) == "id3":
        tags.delall(key)
        if values is not None:
            tags.add(id3_frame(key, values))
    elif values is None:
        if key in tags:
            del tags[key]
    else:
        tags[key] = list(values)


def id3_frame(key: str, values: list):
    """A UTF-8 ID3 text frame (or an English comment without description) holding ``values``."""
    from mutagen import id3

    if key.startswith("COMM"):
        return id3.COMM(encoding=id3.Encoding.UTF8, lang="eng", desc="", text=list(values))
    return getattr(id3, key)(encoding=id3.Encoding.UTF8, text=list(values))


def save_tags(audio, *, remove_if_empty: bool = False) -> None:
    """Write the tags back; an ID3 tag keeps its version (2.3 stays 2.3). With ``remove_if_empty``, a file left
    with no tag at all gets no empty tag block."""
    if remove_if_empty and audio.tags is not None and not list(audio.tags.keys()):
        audio.delete()
        return
    if scheme_of(audio) == "id3":
        audio.save(v2_version=3 if audio.tags.version[:2] == (2, 3) else 4)
    else:
        audio.save()


def audio_digest(path) -> str:
    """A digest of the decoded samples (with rate and channels): equal digests, identical audio."""
    import soundfile as sf

    digest = hashlib.sha256()
    try:
        with sf.SoundFile(path) as f:
            digest.update(f"{f.samplerate}/{f.channels}/".encode())
            for block in f.blocks(blocksize=1 << 16, dtype="float64", always_2d=True):
                digest.update(block.tobytes())
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(path, f"cannot be decoded ({e})") from None
    return digest.hexdigest()


def write_field(path, field: str, values: Optional[list], *, expected: Optional[list],
                remove_if_empty: bool = False) -> None:
    """Set one field of ``path`` safely: the copy written beside it must decode to the same samples and read
    back ``values`` before it replaces the original (same permission bits and, when allowed, owner; a symbolic
    link's target is written, the link stays). Raises :class:`~genrenet.errors.AudioError` and leaves the
    original untouched when the field no longer holds ``expected`` or a check fails."""
    path = os.path.realpath(path)
    current = read_field(open_tags(path), field)
    if current != expected:
        raise AudioError(path, f"its {field} changed meanwhile (now {current}); left as it is")
    before = audio_digest(path)
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=f".genrenet-tmp{os.path.splitext(name)[1]}")
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        audio = open_tags(tmp)
        set_field(audio, field, values)
        save_tags(audio, remove_if_empty=remove_if_empty)
        verify_copy(tmp, path, field, values, before)
        keep_metadata(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    sync_folder(folder)


def verify_copy(tmp: str, path: str, field: str, values: Optional[list], digest: str) -> None:
    """Raise unless the written copy reads back ``values`` and decodes to the original's samples."""
    if read_field(open_tags(tmp), field) != values:
        raise AudioError(path, f"the {field} written did not read back; left as it is")
    if audio_digest(tmp) != digest:
        raise AudioError(path, "writing the tag would change the decoded audio; left as it is")
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())


def keep_metadata(original: str, copy: str) -> None:
    """Give ``copy`` the permission bits and (when this process may) the owner of ``original``."""
    st = os.stat(original)
    os.chmod(copy, st.st_mode & 0o7777)
    try:
        os.chown(copy, st.st_uid, st.st_gid)
    except OSError:
        pass


def sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
