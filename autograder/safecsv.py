"""Write CSVs that are safe to open in a spreadsheet (OWASP "CSV injection"), and read them back.

Spreadsheets evaluate a cell whose text begins with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=HYPERLINK(...)``, DDE payloads), and a leading tab or carriage return lets such a cell slip
past naive checks. Student ids come from file names and names from rosters, so every CSV the kit
writes goes through :func:`write_csv`, which prefixes such a text cell with an apostrophe, the
spreadsheet convention for "this is text" (Excel and Google Sheets hide it, LibreOffice shows it;
none evaluates the cell). The full-width forms (``＝``, ``＋``, ``－``, ``＠``), which some
spreadsheets in East Asian locales treat the same way, are included.

What is left unchanged:

- numbers: numeric columns, and text that is a plain decimal number (``-1.5``, ``+3``, ``2e-3``)
  so a negative number stays a number;
- the columns named in ``keep``: identifiers an LMS matches character for character (see
  :mod:`autograder.exports` for how an identifier that looks like a formula is handled).

A text cell that already begins with apostrophes followed by a trigger character gets one more
apostrophe, so the rule can be undone exactly: :func:`read_csv` (and :func:`restore`) remove one
apostrophe from such cells and give back the original text.

A carriage return inside a text cell is written as a line feed. Python's CSV writer quotes a field
only for the characters of its line terminator (``\n`` here), so a bare ``\r`` went out unquoted,
and spreadsheets end the row there: ``x\r=1+1`` became a second row starting with a formula.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from .safetext import valid_unicode

if TYPE_CHECKING:  # imported where a table is read: not before the first result
    import pandas as pd

TRIGGERS = "=+-@\t\r\n\uff1d\uff0b\uff0d\uff20"
"""Leading characters that make a spreadsheet evaluate a cell (OWASP, plus full-width forms, and
the line feed a leading carriage return becomes)."""
_NEUTRALISE = re.compile(f"'*[{re.escape(TRIGGERS)}]")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_RESTORE = re.compile(f"'+[{re.escape(TRIGGERS)}]")


def needs_quote(value: object) -> bool:
    """Whether :func:`neutralise` would change ``value`` (text a spreadsheet would evaluate)."""
    return (
        isinstance(value, str)
        and _NEUTRALISE.match(value) is not None
        and _NUMBER.fullmatch(value) is None
    )


def neutralise(value: object) -> object:
    """One cell as written by :func:`write_csv`: ``'`` + the text when it would be evaluated.

    Non-text values are returned unchanged; text is also made valid Unicode (lone surrogates
    become U+FFFD, see :func:`~autograder.safetext.valid_unicode`) and its carriage returns line
    feeds (so the CSV writer quotes the cell).
    """
    if not isinstance(value, str):
        return value
    value = valid_unicode(value)
    value = f"'{value}" if needs_quote(value) else value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def restore(value: object) -> object:
    """The inverse of :func:`neutralise` for one cell read back from a kit CSV."""
    if isinstance(value, str) and _RESTORE.match(value) and _NUMBER.fullmatch(value[1:]) is None:
        return value[1:]
    return value


def write_csv(
    frame: pd.DataFrame, path: Path, *, keep: Collection[str] = (), append: bool = False
) -> Path:
    """Write ``frame`` to ``path`` with every formula-like text cell and header neutralised.

    UTF-8, ``\\n`` line endings, no index; numbers are formatted by pandas as before.

    Args:
        frame: The table to write (not modified).
        path: Where to write it.
        keep: Columns written exactly as they are (their header and cells); the caller makes
            sure they hold nothing a spreadsheet would evaluate.
        append: Add the rows to the end of ``path``, without a header (a table written in
            chunks).

    Returns:
        ``path``.
    """
    table = frame.copy()
    for column in table.columns:
        if column in keep or not _holds_text(table[column]):
            continue
        table[column] = table[column].map(neutralise)
    table.columns = [column if column in keep else neutralise(column) for column in table.columns]
    table.to_csv(
        path,
        index=False,
        lineterminator="\n",
        encoding="utf-8",
        mode="a" if append else "w",
        header=not append,
    )
    return Path(path)


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv`, undoing the neutralisation (``pd.read_csv`` args).

    Cells and headers read as text get their original value back; numbers are untouched.
    """
    import pandas as pd

    table = pd.read_csv(path, **kwargs)
    for column in table.columns:
        if _holds_text(table[column]):
            table[column] = table[column].map(restore)
    table.columns = [restore(column) for column in table.columns]
    return table


def _holds_text(series: pd.Series) -> bool:
    import pandas as pd

    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))
