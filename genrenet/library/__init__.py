"""Features for a music library: genres written into the files' own tags (:func:`tag_files`, reversible with
:func:`undo_tags`)."""
from .tagging import TagChange, TagReport, tag_files, undo_tags

__all__ = ["TagChange", "TagReport", "tag_files", "undo_tags"]
