"""Features for a music library: genres written into the files' own tags (:func:`tag_files`, reversible with
:func:`undo_tags`), and similar songs from an index of clip embeddings (:func:`build_index`, :func:`similar`)."""
from .index import build_index, similar
from .tagging import TagChange, TagReport, tag_files, undo_tags

__all__ = ["TagChange", "TagReport", "build_index", "similar", "tag_files", "undo_tags"]
