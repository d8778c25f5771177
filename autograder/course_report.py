"""``COURSE/course.html`` and the misconceptions that persist across sheets.

One self-contained page (inline CSS and SVG, no scripts, nothing fetched), drawn with the pieces
of :mod:`autograder.report` so both pages look alike and are byte-identical on reruns: the
assignments and their weights, the score distribution of each assignment and of the weighted
percent, the diagnosis tags students carry on two or more sheets, and what needs a TA.

A misconception *persists* when one student's answers got the same diagnosis tag on two or more
assignments (e.g. ``transposed`` on both sheets). Tags are read from each folder's
``results/<student>.json`` (graded submissions only); tags that record no answer or a crash
(:data:`NOT_MISCONCEPTIONS`) are left out.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from .checks.tags import CASE_TAGS, FALLBACK_TAGS, GENERIC_TAGS
from .course import WEIGHTED, GradedFolder
from .errors import KitError
from .figures import ACCENT_COLOR as _ACCENT_COLOR
from .figures import BAR_COLOR as _BAR_COLOR
from .figures import default_style as _default_style
from .figures import despine as _despine
from .figures import figure as _figure
from .figures import svg as _svg
from .gradebook import STATUSES
from .pack import registry
from .report import _CSS, _empty, _fmt, _html_table, _section

NOT_MISCONCEPTIONS: tuple[str, ...] = ("missing", "exception", "timeout")
"""Tags that say a question was not answered or did not run, not how it was misunderstood."""
OCCURRENCE_COLUMNS: tuple[str, ...] = ("student", "assignment", "question", "tag")
PERSISTENT_COLUMNS: tuple[str, ...] = ("student", "tag", "sheets", "where")
_BINS = np.arange(0, 101, 10.0)


def tag_occurrences(folders: Sequence[GradedFolder]) -> pd.DataFrame:
    """Every diagnosis tag of every graded submission: ``student, assignment, question, tag``.

    A tag counts once per student, assignment and question; :data:`NOT_MISCONCEPTIONS` are left
    out. Sorted by student, then assignment (in the order given), question and tag.
    """
    rows = []
    for order, folder in enumerate(folders):
        questions = [q.id for q in folder.manifest.questions]
        for student, result in folder.results.items():
            if result.get("status") != "graded":
                continue
            entries = result.get("questions") or {}
            for index, question in enumerate(questions):
                entry = entries.get(question) if isinstance(entries, dict) else None
                tags = entry.get("tags") if isinstance(entry, dict) else None
                for tag in dict.fromkeys(tags if isinstance(tags, list) else []):
                    if isinstance(tag, str) and tag not in NOT_MISCONCEPTIONS:
                        rows.append((student, order, index, folder.name, question, tag))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[5]))
    return pd.DataFrame(
        [(s, a, q, t) for s, _, _, a, q, t in rows], columns=list(OCCURRENCE_COLUMNS)
    )


def persistent_misconceptions(folders: Sequence[GradedFolder]) -> pd.DataFrame:
    """Students tagged with the same misconception on two or more assignments.

    Returns:
        ``student, tag, sheets, where``: one row per student and tag, ``sheets`` the number of
        assignments with the tag, ``where`` e.g. ``"math_primer: q1a, q1d; backprop: q2"``;
        sorted by tag, then student.
    """
    occurrences = tag_occurrences(folders)
    places: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(dict)
    for row in occurrences.itertuples(index=False):
        places[row.student, row.tag].setdefault(row.assignment, []).append(row.question)
    rows = [
        (
            student,
            tag,
            len(where),
            "; ".join(f"{name}: {', '.join(qs)}" for name, qs in where.items()),
        )
        for (student, tag), where in places.items()
        if len(where) >= 2
    ]
    rows.sort(key=lambda r: (r[1], r[0]))
    return pd.DataFrame(rows, columns=list(PERSISTENT_COLUMNS))


def tag_summary(folders: Sequence[GradedFolder]) -> pd.DataFrame:
    """Per tag: students with it on each assignment, and students with it on two or more.

    Returns:
        An integer table indexed by tag, one column per assignment then ``persistent``; most
        persistent first, then most frequent, then by name. Only tags that occurred.
    """
    occurrences = tag_occurrences(folders)
    names = [f.name for f in folders]
    per_sheet = (
        occurrences.drop_duplicates(["student", "assignment", "tag"])
        .groupby(["tag", "assignment"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=names, fill_value=0)
    )
    persistent = persistent_misconceptions(folders)["tag"].value_counts()
    summary = per_sheet.assign(persistent=persistent.reindex(per_sheet.index, fill_value=0))
    summary = summary.astype(int)
    summary["_all"] = summary[names].sum(axis=1)
    summary = summary.reset_index().sort_values(
        ["persistent", "_all", "tag"], ascending=[False, False, True], kind="stable"
    )
    return summary.drop(columns="_all").set_index("tag").rename_axis(columns=None)


def tag_hints(folders: Sequence[GradedFolder]) -> dict[str, str]:
    """Tag -> hint: the generic vocabulary, then each assignment's pack's (when this kit has it)."""
    hints = {**GENERIC_TAGS, **CASE_TAGS, **FALLBACK_TAGS}
    for folder in folders:
        try:
            pack = registry.load(folder.name)
        except KitError:  # graded with a pack this copy of the kit does not have
            continue
        for tag, hint in pack.vocabulary.items():
            hints.setdefault(tag, hint)
    return hints


def render_course(
    table: pd.DataFrame, folders: Sequence[GradedFolder], *, weights: Mapping[str, float]
) -> str:
    """The course page's HTML (see the module docstring)."""
    with _default_style():
        sections = [
            _assignments_section(table, folders, weights),
            _distributions_section(table, folders),
            _persistent_section(folders),
            _attention_section(table, folders),
        ]
    heading = "Course gradebook"
    names = ", ".join(f.name for f in folders)
    overview = html.escape(
        f"{len(table)} student(s), {len(folders)} assignment(s): {names}. A missing assignment "
        "counts as 0 in the weighted percent."
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{heading}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f'<h1>{heading}</h1>\n<p class="overview">{overview}</p>\n'
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )


# --- sections ---------------------------------------------------------------------------------


def _assignments_section(
    table: pd.DataFrame, folders: Sequence[GradedFolder], weights: Mapping[str, float]
) -> str:
    total_weight = math.fsum(weights.values())
    rows = []
    for folder in folders:
        statuses = table[f"{folder.name}_status"]
        graded = table.loc[statuses == "graded", f"{folder.name}_percent"].astype(float)
        rows.append(
            [
                html.escape(folder.name),
                html.escape(folder.manifest.title),
                f"{folder.manifest.total_points:g}",
                f"{100 * weights[folder.name] / total_weight:.0f}%",
                *[str(int((statuses == s).sum())) for s in STATUSES],
                _fmt(graded.mean()) if len(graded) else "\u2014",
                _fmt(graded.median()) if len(graded) else "\u2014",
                html.escape(_when(folder.manifest.graded_at)),
            ]
        )
    header = [
        "assignment",
        "title",
        "points",
        "weight",
        *STATUSES,
        "mean %",
        "median %",
        "graded at",
    ]
    return _section(
        "Assignments",
        _html_table(header, rows, numeric=set(range(2, 6 + len(STATUSES)))),
        note="Students per status, and the mean and median percent of graded submissions. "
        "Weights are relative; missing counts students with nothing submitted.",
    )


def _when(stamp: str) -> str:
    """An ISO 8601 time as ``2026-12-02 10:15 UTC`` (the text itself if it is not one)."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.tzinfo is not None else "")


def _distributions_section(table: pd.DataFrame, folders: Sequence[GradedFolder]) -> str:
    panels = [
        (
            f"{folder.name} (graded)",
            table.loc[table[f"{folder.name}_status"] == "graded", f"{folder.name}_percent"],
            _BAR_COLOR,
        )
        for folder in folders
    ]
    panels.append(("weighted percent (everyone)", table[WEIGHTED], _ACCENT_COLOR))
    if table.empty:
        return _section("Score distributions", _empty("No students: nothing to plot."))
    columns = min(len(panels), 3)
    lines = math.ceil(len(panels) / columns)
    fig = _figure(3.2 * columns, 2.8 * lines)
    axes = np.atleast_1d(fig.subplots(lines, columns, squeeze=False)).ravel()
    for ax, (title, values, color) in zip(axes, panels, strict=False):
        values = values.astype(float).to_numpy()
        ax.hist(np.clip(values, 0, 100), bins=_BINS, color=color, edgecolor="white")
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_title(f"{title}: {len(values)}", fontsize=10)
        ax.set_xlabel("percent")
        ax.yaxis.get_major_locator().set_params(integer=True)
        _despine(ax)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("students")
    return _section(
        "Score distributions",
        _svg(fig, "course-dist"),
        note="Percent of each assignment's points, graded submissions only (bins of 10, the "
        "last includes 100), and the weighted percent of every student (missing counts as 0).",
    )


def _persistent_section(folders: Sequence[GradedFolder]) -> str:
    heading = "Misconceptions that persist across sheets"
    note = (
        "Diagnosis tags one student got on two or more assignments (any question). Tags that "
        f"record no answer or a crash ({', '.join(NOT_MISCONCEPTIONS)}) are left out."
    )
    if len(folders) < 2:
        return _section(heading, _empty("One assignment only: nothing can persist."), note)
    summary = tag_summary(folders)
    if summary.empty:
        return _section(heading, _empty("No diagnosis tags on graded submissions."), note)
    names = [f.name for f in folders]
    hints = tag_hints(folders)
    rows = [
        [
            f"<code>{html.escape(tag)}</code>",
            html.escape(hints.get(tag, "(a tag of a pack this kit does not have)")),
            *[str(int(row[n])) for n in names],
            f"<strong>{int(row['persistent'])}</strong>",
        ]
        for tag, row in summary.iterrows()
    ]
    counts = _html_table(
        ["tag", "hint", *names, "2+ sheets"],
        rows,
        numeric=set(range(2, 3 + len(names))),
        css="tags",
    )
    persistent = persistent_misconceptions(folders)
    if persistent.empty:
        return _section(
            heading, _empty("No student has the same tag on two sheets.") + counts, note
        )
    shown = summary[summary["persistent"] > 0]
    fig = _figure(8.5, 1.0 + 0.4 * len(shown))
    ax = fig.add_subplot()
    y = np.arange(len(shown))[::-1]
    bars = ax.barh(y, shown["persistent"], color=_ACCENT_COLOR, height=0.6)
    ax.bar_label(bars, padding=3, fontsize=9)
    ax.set_yticks(y, list(shown.index))
    ax.set_xlabel("students with the tag on two or more sheets")
    from matplotlib.ticker import MaxNLocator

    locator = ax.xaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # the default AutoLocator is one
        locator.set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    students = _html_table(
        ["student", "tag", "sheets", "where (assignment: questions)"],
        [
            [
                html.escape(r.student),
                f"<code>{html.escape(r.tag)}</code>",
                str(r.sheets),
                html.escape(r.where),
            ]
            for r in persistent.itertuples(index=False)
        ],
        numeric={2},
    )
    return _section(heading, _svg(fig, "course-persist") + counts + students, note)


def _attention_section(table: pd.DataFrame, folders: Sequence[GradedFolder]) -> str:
    rows = [
        [html.escape(str(row["student"])), html.escape(folder.name), html.escape(status)]
        for row in table.to_dict("records")
        for folder in folders
        if (status := str(row[f"{folder.name}_status"])) != "graded"
    ]
    if not rows:
        return _section("Needs attention", _empty("Every assignment of every student is graded."))
    return _section(
        "Needs attention",
        _html_table(["student", "assignment", "status"], rows, css="attention"),
        note="Assignments not graded: missing counts as 0; timeout, error and invalid rows are "
        "explained in that assignment's report.html.",
    )
