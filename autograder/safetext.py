"""Student-controlled text made safe to store, print and render.

Exception messages, file names and student ids are written by students. Before such text
reaches an output it goes through one of these functions:

- :func:`valid_unicode` for anything encoded as UTF-8 (results JSON, CSVs, feedback files): a
  lone surrogate (``'\\ud800'`` from an exception message, ``'\\udcff'`` from an undecodable
  byte in a file name) cannot be encoded and becomes U+FFFD.
- :func:`visible` for anything a person reads (terminal, log lines, feedback pages): control
  characters (ESC, BEL, CR, NUL, C1 controls, ...), lone surrogates and the Unicode bidirectional
  overrides are shown as escapes (``\\x1b``, ``\\u202e``) instead of acting on the terminal or
  the page.

In a rich markup string (the CLI), :func:`visible` text is also passed through rich's own
``rich.markup.escape``, so ``[red]`` is printed, not interpreted. This module uses the standard
library only: it ships with the checks (``build.SHIPPED``).
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2028\u2029"
    "\u2066-\u2069\ufeff]"
)
_NEWLINE_AND_TAB = re.compile("[\n\t]")


def valid_unicode(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


def visible(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` with control and invisible formatting characters shown as escapes.

    Args:
        text: Any string.
        keep_newlines: Keep ``\\n`` and ``\\t`` as they are (multi-line log records); when
            False they are escaped too.

    Returns:
        The text, where each C0/C1 control character (but ``\\n`` and ``\\t`` when kept), lone
        surrogate, zero-width or bidirectional formatting character and line/paragraph
        separator is written as ``\\xNN`` or ``\\uNNNN``.
    """
    text = _INVISIBLE.sub(_escape_char, str(text))
    return text if keep_newlines else _NEWLINE_AND_TAB.sub(_escape_char, text)


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
