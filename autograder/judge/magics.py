"""IPython's cell transformer for the evaluators (``%magic``, ``!cmd`` and ``?`` lines to Python
calls on the stub shell).

Apart from ``evaluator.py`` so that only the evaluators' template process imports IPython (it
preloads this module, see ``engine.warm_context``): the judge's own process never needs it, and
importing it took a quarter of ``grade``'s start-up before the first result.

Most cells hold no IPython syntax at all, and for them the transformer (which tokenizes every
cell, twice) only adds a final newline: :func:`plain_python` recognises them by a few cheaper
tests, each a superset of what one of IPython's transformations looks for, so a cell it accepts
is one IPython would leave as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from typing import Any


def _transformer() -> Any:
    """IPython's ``TransformerManager``, loaded without the rest of IPython; None without IPython.

    ``import IPython`` runs the package's ``__init__``, which brings the whole shell (about 110
    modules, 5 MB of the template's private memory that each evaluator forks, copies page tables
    of and unmaps at its exit). The transformer needs only its own module and
    ``IPython.utils.tokenutil``: they are loaded under a bare ``IPython`` package (its folder, its
    ``__init__`` not run), and every ``IPython`` entry is then taken out of ``sys.modules`` again,
    so that a student's ``import IPython`` imports the real package as it would anywhere.
    """
    spec = importlib.util.find_spec("IPython")
    if spec is None or not spec.submodule_search_locations:
        return None
    bare = types.ModuleType("IPython")
    bare.__path__ = list(spec.submodule_search_locations)
    before = set(sys.modules)
    sys.modules["IPython"] = bare
    try:
        module = importlib.import_module("IPython.core.inputtransformer2")
        return module.TransformerManager()
    finally:
        for name in set(sys.modules) - before:
            if name == "IPython" or name.startswith("IPython."):
                del sys.modules[name]


TRANSFORMER: Any = _transformer()

ESCAPES = ("!", "?", "%", ",", ";", "/")
"""IPython's escapes at the start of a line: ``!cmd``, ``?obj``, ``%magic`` (and ``%%cell``
magics), ``,f a b`` and ``;f a b`` (quoted calls), ``/f a`` (call without parentheses)."""
_ASSIGNED_ESCAPE = re.compile(r"=[\s\\]*[%!]")
"""``a = %magic`` or ``a = !cmd`` (any ``=`` followed by ``%`` or ``!``, across blanks and line
continuations)."""
_BLANK_LINE = re.compile(r"^[ \t]+$", re.MULTILINE)
"""A line of spaces and tabs only (``textwrap.dedent``, which IPython applies, empties it)."""
_PROMPT = re.compile(r"\s*>>>|\s*\.{3,}:|(\[nav\] |\[ins\] | )?In \[")
"""Pasted prompts IPython strips: ``>>>`` (doctest), ``...:`` and ``In [1]:`` (IPython's)."""


def plain_python(source: str) -> str | None:
    """``source`` as IPython's transformer would return it, if it holds no IPython syntax (the
    source ending with a newline); else None, and the transformer is needed.

    None for a cell with a line that starts with an escape (:data:`ESCAPES`, after blanks), a
    ``?`` anywhere, an ``=`` followed by ``%`` or ``!``, a first line that is blank or indented
    (IPython drops leading blank lines and dedents), a line of blanks only, or a pasted prompt.
    """
    cell = source if source.endswith("\n") else source + "\n"
    if "?" in cell or cell[0] in " \t" or _BLANK_LINE.search(cell) or _ASSIGNED_ESCAPE.search(cell):
        return None
    lines = cell.splitlines(keepends=True)  # the lines as IPython's transformer splits them
    if lines[0].isspace():
        return None
    for line in lines:
        if line.lstrip().startswith(ESCAPES) or _PROMPT.match(line):
            return None
    return cell
