"""Student feedback files: ``OUT/feedback/<student>.md`` and ``.html``, one pair per result.

Each file has the student's total, a status explanation when the submission was not graded
normally, notes (e.g. interrupted cells), and per question the score out of the possible points
with the diagnosis messages and hints (the results' ``feedback`` text). Only what the results
already tell students is rendered: never the hidden tests' code, never the judge's internal
notes (``isolation: ...``) or an ``error`` row's crash text (the TA has it in the JSON).

Texts in results may come from students (exception messages, file names). Control characters
(ESC, BEL, ...) are shown as escapes (``\\x1b``, :func:`~autograder.safetext.visible`) in both
files. The HTML is self-contained (inline CSS, no scripts, no external resources) and every piece
of text from a result is escaped with :func:`html.escape`. In the Markdown, ``&``, ``<`` and
``>`` are written as HTML entities (no raw HTML, no ``<autolink>``), and ``[``, ``\\``,
backticks, ``@`` and the ``:``/``.`` of URLs are backslash-escaped, so ``![x](https://...)``
shows as text instead of loading an image or making a link; only the kit's own `code spans` (one
backtick each side) stay code.
Files are named by :func:`~autograder.results.file_stem` of the student id.
"""

from __future__ import annotations

import functools
import html
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

from autograder.errors import KitError
from autograder.gradebook import write_file
from autograder.pack.spec import Pack
from autograder.results import file_stem, student_ids
from autograder.safetext import visible

logger = logging.getLogger(__name__)


STATUS_EXPLANATIONS: dict[str, str] = {
    "graded": "",
    "timeout": "Your notebook did not finish running within the time limit, so it could not be "
    "graded completely. Look for a loop that never ends or a very slow cell, then run "
    "Kernel > Restart & Run All before you hand in.",
    "error": "Your submission could not be graded because of a problem on the grading side, "
    "not in your work. Your TA has the details and will grade it again; you do not need to "
    "do anything.",
    "invalid": "Your submission could not be read as a notebook, so nothing in it was graded. "
    "The reason is given below; hand in the saved .ipynb file (or a zip with exactly one "
    "notebook).",
    "missing": "No submission was found for you. If you did hand in, contact your TA.",
}
"""Status -> what it means for the student (empty for ``graded``)."""

HIDDEN_NOTE_PREFIXES: tuple[str, ...] = ("isolation:",)
"""Notes for TAs only (how the judge ran), left out of the students' feedback."""

_CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
"""A code span as the kit writes them: one backtick each side, no backtick or newline inside
(a longer backtick run would make Markdown pair the backticks differently)."""
_MARKDOWN_SPECIAL = re.compile(r"[\\`\[@]|(?<=www)\.|:(?=//)", re.IGNORECASE)
"""Characters escaped outside code spans: what starts a link, image, footnote or code span, and
what bare-URL and e-mail autolinks (GitHub-flavoured Markdown) are recognised by."""

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 1.5rem; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: .25rem .6rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { padding: .5rem .75rem; background: #fff4e5; border-left: 4px solid #e08a00; }
.full { color: #146c2e; } .partial { color: #8a5300; } .none { color: #a4161a; }
code { background: #f2f2f2; padding: 0 .2rem; border-radius: 3px; }
""".strip()


class FeedbackError(KitError):
    """A result cannot be turned into a feedback file (no usable student id, duplicates)."""


def write_feedback(results: list[dict], out: Path, *, pack: Pack) -> list[Path]:
    """Write ``out/feedback/<stem>.md`` and ``.html`` for every result (stem: the student id
    when it is a plain file name, see :func:`~autograder.results.file_stem`).

    Args:
        results: One result dict per submission (the ``results/<student>.json`` format).
        out: The output folder; ``feedback/`` is created inside it.
        pack: The assignment (its title, questions and sheet labels).

    Returns:
        The written paths, sorted by student, ``.md`` before ``.html``.

    Raises:
        FeedbackError: If a result has no student id (not a string, or blank) or two results
            share one.
    """
    students = student_ids(results, _student_id)
    duplicates = sorted(s for s, n in Counter(students).items() if n > 1)
    if duplicates:
        raise FeedbackError(f"several results for student(s) {', '.join(duplicates)}")
    folder = Path(out) / "feedback"
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    # By student, each result read when its turn comes (a PackedResults decodes one at a time).
    for index in sorted(range(len(students)), key=students.__getitem__):
        student, result = students[index], results[index]
        report = _report(student, result, pack)
        stem = file_stem(student)
        md = folder / f"{stem}.md"
        write_file(str(md), render_markdown(report).encode("utf-8"))
        page = folder / f"{stem}.html"
        write_file(str(page), render_html(report).encode("utf-8"))
        paths += [md, page]
    log_feedback_written(len(students), Path(out))
    return paths


def log_feedback_written(count: int, out: Path) -> None:
    """The log line of :func:`write_feedback` (also said for the files a helper process wrote)."""
    logger.info("wrote feedback for %d student(s) to %s", count, Path(out) / "feedback")


def render_markdown(report: dict) -> str:
    """The Markdown feedback for one :func:`_report`."""
    lines = [f"# {_md(report['title'])}: feedback for {_md(report['student'])}", ""]
    lines += [f"**Total: {_pts(report['total'])} / {_pts(report['possible'])} points**", ""]
    if report["explanation"]:
        lines += [f"**Status: {_md(report['status'])}.** {_md(report['explanation'])}", ""]
    if report["reason"]:
        lines += [f"Reason: {_md(report['reason'])}", ""]
    if report["notes"]:
        lines += ["## Notes", ""] + [f"- {_md(note)}" for note in report["notes"]] + [""]
    lines += ["## Questions", "", "| question | points |", "|---|---:|"]
    for q in report["questions"]:
        lines.append(f"| {q['name']} ({q['sheet']}) | {_pts(q['score'])} / {_pts(q['possible'])} |")
    lines.append("")
    for q in report["questions"]:
        lines += [f"### {q['name']} ({q['sheet']}): {_pts(q['score'])} / {_pts(q['possible'])}", ""]
        lines += [f"- {_md(line)}" for line in q["lines"]] or ["- All tests passed."]
        lines.append("")
    return "\n".join(lines)


def render_html(report: dict) -> str:
    """The self-contained HTML feedback for one :func:`_report` (all text escaped)."""
    student = _html(report["student"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_html(report['title'])}: feedback for {student}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{_html(report['title'])}: feedback for {student}</h1>",
        f"<p><strong>Total: {_pts(report['total'])} / {_pts(report['possible'])} points</strong></p>",
    ]
    if report["explanation"]:
        parts.append(
            f'<p class="status"><strong>Status: {_html(report["status"])}.</strong> '
            f"{_html(report['explanation'])}</p>"
        )
    if report["reason"]:
        parts.append(f"<p>Reason: {_html(report['reason'])}</p>")
    if report["notes"]:
        parts += ["<h2>Notes</h2>", "<ul>"]
        parts += [f"<li>{_html(note)}</li>" for note in report["notes"]]
        parts.append("</ul>")
    parts += [
        "<h2>Questions</h2>",
        "<table>",
        "<thead><tr><th>question</th><th>points</th></tr></thead>",
        "<tbody>",
    ]
    for q in report["questions"]:
        parts.append(
            f'<tr><td><a href="#{q["name"]}">{q["name"]}</a> ({_html(q["sheet"])})</td>'
            f'<td class="num {_level(q)}">{_pts(q["score"])} / {_pts(q["possible"])}</td></tr>'
        )
    parts += ["</tbody>", "</table>"]
    for q in report["questions"]:
        parts.append(
            f'<h2 id="{q["name"]}">{q["name"]} ({_html(q["sheet"])}): '
            f'<span class="{_level(q)}">{_pts(q["score"])} / {_pts(q["possible"])}</span></h2>'
        )
        parts.append("<ul>")
        parts += [f"<li>{_html(line)}</li>" for line in q["lines"] or ["All tests passed."]]
        parts.append("</ul>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _report(student: str, result: dict, pack: Pack) -> dict:
    """What a feedback file shows, from one result (pure; no rendering)."""
    status = str(result.get("status", ""))
    questions = result.get("questions") or {}
    if not isinstance(questions, dict):
        questions = {}
    entries: list[dict[str, Any]] = []  # the template's view of each question
    texts = []
    for question in pack.questions:
        name = question.id
        entry = questions.get(name) or {}
        possible = float(entry.get("possible", question.possible))
        feedback = str(entry.get("feedback") or "")
        texts.append(feedback)
        entries.append(
            {
                "name": name,
                "sheet": question.sheet,
                "score": float(entry.get("score") or 0.0),
                "possible": possible,
                "feedback": feedback,
            }
        )
    reason = ""
    if status != "graded":
        # Ungraded results repeat one reason in every question; show it once, not per question.
        shared = texts[0] if texts and all(t == texts[0] for t in texts) else ""
        reason = "" if status == "error" else shared
        for entry in entries:
            if status == "error" or entry["feedback"] == shared:
                entry["feedback"] = ""
    for entry in entries:
        text = entry.pop("feedback")
        entry["lines"] = [line for line in text.splitlines() if line.strip()]
        if status != "graded" and not entry["lines"]:
            entry["lines"] = ["Not graded (see the status above)."]
    notes = [
        str(n) for n in result.get("notes") or [] if not str(n).startswith(HIDDEN_NOTE_PREFIXES)
    ]
    return {
        "title": pack.title,
        "student": student,
        "status": status,
        "explanation": STATUS_EXPLANATIONS.get(status, f"Status {status}."),
        "reason": reason,
        "notes": notes,
        "total": float(result.get("total") or sum(e["score"] for e in entries)),
        "possible": float(result.get("possible") or pack.total_points),
        "questions": entries,
    }


def _student_id(result: Any, index: int) -> str:
    if not isinstance(result, dict):
        raise FeedbackError(f"result #{index} is a {type(result).__name__}, expected a dict")
    student = result.get("student")
    if not isinstance(student, str) or not student.strip():
        raise FeedbackError(f"result #{index} has no student id (got {student!r})")
    return student


def _level(q: dict) -> str:
    if q["score"] >= q["possible"] - 1e-9:
        return "full"
    return "partial" if q["score"] > 0 else "none"


@functools.lru_cache(maxsize=4096)  # the same few point values in every file
def _pts(value: float) -> str:
    return f"{round(float(value), 4) + 0.0:g}"


@functools.lru_cache(maxsize=8192)  # feedback lines, notes and labels recur across students
def _md(text: str) -> str:
    """Text for Markdown, one line: only the kit's `code spans` are Markdown; the rest is text.

    Outside code spans, ``&``, ``<`` and ``>`` become entities and ``\\``, backticks, ``[``,
    ``@``, the ``:`` of ``://`` and the ``.`` of ``www.`` are backslash-escaped: no raw HTML, link,
    image, footnote, reference definition or autolink (``<...>`` or a bare URL or e-mail address,
    as GitHub-flavoured Markdown links them) can form. Inside code spans nothing is interpreted.
    Control characters are shown as escapes in both.
    """
    line = visible(str(text).replace("\n", " "), keep_newlines=False)
    parts, end = [], 0
    for span in _CODE_SPAN.finditer(line):
        parts += [_md_text(line[end : span.start()]), span.group()]
        end = span.end()
    parts.append(_md_text(line[end:]))
    return "".join(parts)


def _md_text(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), html.escape(text, quote=False))


@functools.lru_cache(maxsize=8192)
def _html(text: str) -> str:
    """Escaped text for HTML, with the feedback's `code spans` as <code> elements."""
    escaped = html.escape(visible(str(text)), quote=True)
    return _CODE_SPAN.sub(r"<code>\1</code>", escaped)
