"""Griffe extension for the API reference: render the reST roles of genrenet's docstrings as inline code.

genrenet's docstrings name other objects Sphinx-style (``:class:`~genrenet.errors.GenrenetError```). Markdown has
no such roles, so ``:class:`~a.b.C``` becomes ``C`` and ``:func:`a.b.f``` becomes ``a.b.f``, in code; a
paragraph ending in ``::`` ends in ``:`` (the indented block after it is already code in Markdown).
"""
import re

import griffe

LITERAL_BLOCK = re.compile(r"::\n")  # reST's "text::" before an indented block; Markdown indents suffice
ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")


def _code(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class RstRoles(griffe.Extension):
    """Rewrite reST roles in every docstring as it is loaded."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(_code, obj.docstring.value)
            obj.docstring.value = LITERAL_BLOCK.sub(":\n", text)
