"""What a submission answered, per question: the answer code and the derivation cells.

Submissions are read with the kit's own intake (:func:`autograder.intake.discover`, so zips and
LMS downloads map to the same student ids as in ``grade``); nothing is ever executed.

- **Answer code** of a question: every code cell that defines one of the question's functions
  (found with :mod:`ast`; a cell that does not parse is matched by its ``def`` lines).
- **Derivations**: Markdown answers to "Your derivation". A derivation is either a Markdown cell
  whose metadata names its question (``"derivation": "q1a"``), or the text that follows a label
  line starting with *Your derivation* (as a heading, bold or plain text): the rest of the
  label's cell and the editable Markdown cells after it, up to the next code cell, label or
  locked cell. The handed-out placeholder, untouched, is no derivation (packs write the label
  as ``#### Your derivation (<sheet label>)`` and the answer cell with the metadata, see
  :mod:`autograder.pack.master`). Its question is, in order: the one named in the metadata, the
  one whose id or sheet label the label line names (``Your derivation (2-1 a)``), else the
  question whose cells (its answer code and its ``grader.check("q..")`` cell) are nearest.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd

from autograder.intake import IntakeError, discover
from autograder.pack.master import DERIVATION_KEY, derivation_text

from .questions import QuestionSpec

log = logging.getLogger(__name__)

_LABEL = re.compile(r"^[\s#>*_]*your\s+derivation\b[\s*_:.]*(?P<rest>.*)$", re.IGNORECASE)
_CHECK = re.compile(r"""grader\.check\(\s*["'](?P<q>[^"']+)["']\s*\)""")


@dataclass(frozen=True)
class Answer:
    """One question's answer in one notebook."""

    code: tuple[str, ...] = ()
    """Sources of the code cells defining the question's functions, in notebook order."""
    derivations: tuple[str, ...] = ()
    """Markdown sources of its derivations."""


@dataclass(frozen=True)
class SubmissionView:
    """What the review app shows of one submission's notebook."""

    student: str
    source: str
    """The submitted file's name."""
    answers: dict[str, Answer] = field(default_factory=dict)
    problem: str | None = None
    """Why the notebook could not be read, if it could not."""


def load_submissions(
    folder: Path | None, *, specs: Sequence[QuestionSpec], roster: pd.DataFrame | None = None
) -> tuple[dict[str, SubmissionView], str | None]:
    """Read every submission in ``folder`` as the grader did.

    Returns:
        The views by student, and a problem (e.g. the folder is gone) or ``None``.
    """
    if folder is None:
        return {}, "the run did not record a submissions folder"
    folder = Path(folder)
    if not folder.is_dir():
        return {}, f"the submissions folder {folder} is not there any more"
    try:
        found = discover(folder, roster=roster)
    except IntakeError as exc:
        return {}, f"cannot read the submissions in {folder}: {exc}"
    views = {}
    for submission in found:
        answers = answers_of(submission.notebook, specs) if submission.notebook else {}
        views[submission.student] = SubmissionView(
            submission.student, submission.source.name, answers, submission.problem
        )
    return views, None


def answers_of(notebook: nbformat.NotebookNode, specs: Sequence[QuestionSpec]) -> dict[str, Answer]:
    """Each question's answer code and derivations in one notebook (see the module docstring)."""
    cells = list(notebook.get("cells") or [])
    sources = [_source(cell) for cell in cells]
    anchors: dict[str, list[int]] = {q.id: [] for q in specs}
    code: dict[str, list[str]] = {q.id: [] for q in specs}
    owner = {f: q.id for q in specs for f in q.functions}
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        for match in _CHECK.finditer(sources[index]):
            if match["q"] in anchors:
                anchors[match["q"]].append(index)
        defined = {owner[name] for name in _defined(sources[index]) if name in owner}
        for qid in sorted(defined):
            anchors[qid].append(index)
            code[qid].append(sources[index])
    derivations: dict[str, list[str]] = {q.id: [] for q in specs}
    for index, text, named, label in _derivations(cells, sources):
        target = named or _named_in(label, specs) or _nearest(index, anchors)
        text = derivation_text({"source": text})  # the untouched placeholder is no derivation
        if target in derivations and text:
            derivations[target].append(text)
    return {q.id: Answer(tuple(code[q.id]), tuple(derivations[q.id])) for q in specs}


def _derivations(cells: list, sources: list[str]) -> Iterable[tuple[int, str, str | None, str]]:
    """(cell index, Markdown text, question named in the metadata, label line) per derivation."""
    index = 0
    while index < len(cells):
        cell = cells[index]
        named = (cell.get("metadata") or {}).get(DERIVATION_KEY)
        if cell.get("cell_type") == "markdown" and isinstance(named, str):
            yield index, sources[index], named, ""
            index += 1
            continue
        label = _label(sources[index]) if cell.get("cell_type") == "markdown" else None
        if label is None:
            index += 1
            continue
        head, rest = label
        parts = [rest] if rest.strip() else []
        start = index
        index += 1
        while index < len(cells):
            after = cells[index]
            meta = after.get("metadata") or {}
            if (
                after.get("cell_type") != "markdown"
                or _label(sources[index]) is not None
                or meta.get("editable") is False
                or DERIVATION_KEY in meta
            ):
                break
            parts.append(sources[index])
            index += 1
        yield start, "\n\n".join(parts), None, head


def _label(source: str) -> tuple[str, str] | None:
    """(label line, the rest of the cell) if the cell starts with a "Your derivation" label."""
    lines = source.splitlines()
    for position, line in enumerate(lines):
        if not line.strip():
            continue
        match = _LABEL.match(line)
        if match is None:
            return None
        tail = match["rest"]
        if line.lstrip().startswith("#"):
            tail = ""  # a heading is all label
        elif tail.startswith("("):
            tail = tail.partition(")")[2].lstrip(" *_:.")  # "(2-1 a)" names the question
        return line, "\n".join([tail, *lines[position + 1 :]])
    return None


def _named_in(label: str, specs: Sequence[QuestionSpec]) -> str | None:
    """The question whose id or sheet label the label line names (the longest match)."""
    found = [
        (len(name), q.id)
        for q in specs
        for name in {q.id, q.label}
        if name and re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", label)
    ]
    return max(found)[1] if found else None


def _nearest(index: int, anchors: dict[str, list[int]]) -> str | None:
    best, best_distance = None, None
    for qid, positions in anchors.items():
        if not positions:
            continue
        low, high = min(positions), max(positions)
        distance = low - index if index < low else (index - high if index > high else 0)
        if best_distance is None or distance < best_distance:
            best, best_distance = qid, distance
    return best


def _defined(source: str) -> set[str]:
    """Names of the functions a cell defines at its top level."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set(re.findall(r"^def\s+([A-Za-z_]\w*)", source, flags=re.MULTILINE))
    return {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _source(cell: dict) -> str:
    source = cell.get("source") or ""
    return "".join(source) if isinstance(source, list) else str(source)
