"""Command line: ``python -m autograder build | grade | demo | gradescope-check | new`` (a thin
click layer). Every expected failure (a :class:`~autograder.errors.KitError`) ends with a one-line
``error:`` and exit code 2."""

from __future__ import annotations

import logging
import multiprocessing.util
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import interrupts
from .build import DEFAULT_OUT, default_out
from .build import build as run_build
from .cache import CACHE_DIR
from .errors import KitError
from .figures import PAINT_AHEAD_LIMIT, Painter, painting
from .grading import (
    DEFAULT_TIMEOUT,
    ENGINES,
    GradeRun,
    GradingError,
    GradingInterrupted,
    default_jobs,
)
from .grading import grade as run_grade
from .intake import Submission
from .pack import registry
from .safetext import visible

if TYPE_CHECKING:
    from .regrade import RegradeReport
    from .results import Result

console = Console(stderr=True)
DEMO_OUT = Path("out/demo")
"""The demo's output folder for the default assignment (out/demo/NAME for the others)."""
EXPECTED_ERRORS = (KitError,)
"""Every expected failure derives from :class:`~autograder.errors.KitError`."""


class _VisibleRichHandler(RichHandler):
    """A RichHandler that shows control characters in messages as escapes (never markup)."""

    def render_message(self, record: logging.LogRecord, message: str):
        # File names, student ids and exception texts in log lines come from students.
        return super().render_message(record, visible(message))


jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Submissions graded in parallel [default: number of cores].",
)

build_dir_option = click.option(
    "--build-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the built assignment is (built if needed) [default: dist/ for the course's "
    "default assignment, dist/NAME/ for the others].",
)


def assignment_option(help_text: str):
    """``--assignment NAME``: which pack of assignments/ the command works on."""
    return click.option("--assignment", "-a", metavar="NAME", default=None, help=help_text)


def _assignment(name: str | None) -> str:
    """The named pack (checked), or the course's default (assignments/course.toml)."""
    if name is None:
        return registry.default_name()
    registry.find(name)
    return name


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Autograding kit for the course's exercise sheets (Otter-Grader), one pack per sheet."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[_VisibleRichHandler(console=console, show_path=False, markup=False)],
    )


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Build folder [default: dist/ for the course's default assignment, dist/NAME/ for the "
    "others].",
)
@assignment_option("The assignment to build [default: the course's default].")
def build(out: Path | None, assignment: str | None) -> None:
    """Run Otter Assign: DIR/student/NAME.ipynb and DIR/autograder/autograder.zip.

    Checks the master notebook against the assignment's spec first. Also writes
    DIR/autograder/autograder-offline.zip, for the offline grading image of
    scripts/docker_image.sh (grade --engine docker).
    """
    with _friendly_errors():
        name = _assignment(assignment)
        with console.status("Running Otter Assign (it also checks the solutions pass)..."):
            result = run_build(out=out or default_out(name), pack=name)
    click.echo(f"student notebook: {result.student_notebook}")
    click.echo(f"autograder zip:   {result.autograder_zip}")
    click.echo(f"offline zip:      {result.offline_zip}")


@main.command()
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@jobs_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds per submission.",
)
@click.option(
    "--roster",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV with a 'student' column (optional name, email).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="judge",
    show_default=True,
    help=(
        "judge: sandboxed evaluator, tamper-proof and fast; otter: `otter run` per notebook; "
        "docker: `otter grade` in containers (needs scripts/docker_image.sh)."
    ),
)
@build_dir_option
@assignment_option("The assignment the submissions are for [default: inferred from the notebooks].")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help=(
        "Dask scheduler address (e.g. tcp://host:8786); grade on its workers instead of local "
        "threads."
    ),
)
@click.option(
    "--force",
    is_flag=True,
    help="Grade every submission again instead of reusing the results cached in OUT/.cache.",
)
@click.option(
    "--overrides",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV of manual points (student, question, points, comment) applied on top.",
)
@click.option(
    "--question",
    "questions",
    metavar="QID",
    multiple=True,
    help=(
        "With --force: regrade only this question (repeatable) for every submission, e.g. after "
        "fixing its checks. Other questions keep their cached results; human marks are kept; "
        "what changed is printed and written to OUT/regrade-QID.csv, and changed answers under "
        "a human mark are flagged in the review app."
    ),
)
@click.option(
    "--unsafe-no-isolation",
    is_flag=True,
    help=(
        "Judge engine on a machine that cannot isolate student code: run it anyway, with your "
        "rights (it can read your files and the other submissions). Every result says so."
    ),
)
def grade(
    submissions: Path,
    out: Path,
    jobs: int | None,
    timeout: float,
    roster: Path | None,
    engine: str,
    build_dir: Path | None,
    assignment: str | None,
    scheduler: str | None,
    force: bool,
    overrides: Path | None,
    questions: tuple[str, ...],
    unsafe_no_isolation: bool,
) -> None:
    """Grade a folder of submissions and write OUT/gradebook.csv and OUT/results/.

    Ctrl-C (or SIGTERM) stops within seconds: what is graded stays in OUT/.cache, no output is
    written, and running the same command again resumes.

    Regrade one question after fixing its checks: grade SUBMISSIONS --out OUT --force
    --question QID. Every submission is graded again for QID only; the other questions keep
    their cached results exactly, and a plain rerun afterwards reuses everything. The outputs are
    re-collated as usual; marks from the review app and --overrides rows stay on top.
    """
    if unsafe_no_isolation:
        _warn_unisolated()
    with _friendly_errors(), _stoppable(out) as progress:
        run = run_grade(
            submissions=submissions,
            out=out,
            build_dir=build_dir,
            assignment=assignment and _assignment(assignment),
            jobs=jobs,
            timeout=timeout,
            roster=roster,
            engine=engine,
            progress=progress,
            scheduler=scheduler,
            force=force,
            overrides=overrides,
            unsafe_no_isolation=unsafe_no_isolation,
            questions=questions,
        )
    _report(run)
    if run.regrade is not None:
        _report_regrade(run.regrade)
    if unsafe_no_isolation:
        click.echo(UNISOLATED_WARNING)
    _exit_if_stopped()


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder [default: out/demo for the course's default assignment, out/demo/NAME "
    "for the others].",
)
@jobs_option
@assignment_option("The assignment whose samples to grade [default: the course's default].")
def demo(out: Path | None, jobs: int | None, assignment: str | None) -> None:
    """Build, grade the embedded sample submissions and print a summary."""
    from .samples import write_samples

    with _friendly_errors():
        name = _assignment(assignment)
        if out is None:
            out = DEMO_OUT if default_out(name) == DEFAULT_OUT else DEMO_OUT / name
        samples = write_samples(out / "submissions", pack=name)
        click.echo(f"wrote {len(samples)} sample submissions to {out / 'submissions'}")
    with _friendly_errors(), _stoppable(out) as progress:
        run = run_grade(
            submissions=out / "submissions",
            out=out,
            assignment=name,
            jobs=jobs or default_jobs(),
            progress=progress,
        )
    _report(run)
    _exit_if_stopped()


@main.command("course")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Course folder.")
@click.option(
    "--weights",
    metavar="NAME=W,...",
    default=None,
    help="Relative weight of every assignment (e.g. math_primer=1,backprop=2) [default: equal].",
)
@click.option(
    "--roster",
    type=click.Path(path_type=Path),
    default=None,
    help="Course roster CSV ('student' column; name, canvas_id, email, ... for the LMS files).",
)
def course_command(folders: tuple[Path, ...], out: Path, weights: str | None, roster: Path | None):
    """Merge graded folders (OUT of grade, one per assignment) into a course gradebook.

    Writes COURSE/course.csv, course-canvas.csv, course-moodle.csv and course.html.
    """
    from .course import course as run_course

    with _friendly_errors():
        run = run_course(folders=list(folders), out=out, weights=weights, roster=roster)
    table = run.table
    click.echo(f"students:    {len(table)}")
    for folder in run.folders:
        counts = table[f"{folder.name}_status"].value_counts().to_dict()
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        click.echo(f"{folder.name}: weight {run.weights[folder.name]:g}; {parts}")
    if run.not_posted:
        click.echo(f"not posted:  {len(run.not_posted)} student(s) left out of the LMS files (log)")
    click.echo(f"course:      {run.paths['csv']}")
    click.echo(f"lms imports: {run.paths['canvas']}, {run.paths['moodle']}")
    click.echo(f"report:      {run.paths['html']}")


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Port to listen on [default: 8642 or the next free one; 0: any free port].",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback exposes the app to the network.",
)
@click.option("--user", default=None, help="Your name in the audit trail [default: OS user].")
def review(out: Path, port: int | None, host: str, user: str | None) -> None:
    """Review a graded folder OUT in the browser: rubrics, manual points, comments.

    Prints a URL with a secret token; open it. Every change is saved in OUT/review.sqlite and
    re-collates gradebook.csv, the exports, feedback/ and report.html at once.
    """
    from .review.server import serve

    with _friendly_errors():
        serve(out, host=host, port=port, user=user, announce=click.echo)


@main.command("gradescope-check")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--student", default="student", show_default=True, help="The submitter's id (seeds).")
@build_dir_option
@assignment_option(
    "The assignment of NOTEBOOK [default: inferred from it, else the course's default]."
)
def gradescope_check(
    notebook: Path, student: str, build_dir: Path | None, assignment: str | None
) -> None:
    """Run the autograder zip on NOTEBOOK as Gradescope would, in a local container.

    Needs the grading image (scripts/docker_image.sh). Prints each test of results.json and
    checks the file against Gradescope's documented format; exit code 1 if it departs.
    """
    from .build import ensure_built
    from .gradescope import (
        DockerUnavailable,
        GradescopeRunError,
        format_problems,
        kit_problems,
        run_like_gradescope,
    )

    user = {"email": f"{student}@example.invalid", "id": 0, "name": student, "sid": student}
    with _friendly_errors():
        name = _assignment(assignment) if assignment else _notebook_assignment(notebook)
        pack = registry.load(name)
        built = ensure_built(out=build_dir, pack=pack)
        try:
            with console.status("Building a Gradescope-like image and running the autograder..."):
                run = run_like_gradescope(
                    built.autograder_zip, notebook, metadata={"users": [user]}
                )
        except (DockerUnavailable, GradescopeRunError) as exc:
            raise GradingError(str(exc)) from None
    for test in run.results.get("tests", []):
        score = (
            f"{test['score']:g}/{test['max_score']:g}" if "score" in test else test.get("status")
        )
        line = f"{test.get('name', '?'):<14} {score:<10} {test.get('visibility', 'visible')}"
        click.echo(visible(line))
    click.echo(f"score: {run.results.get('score', 'sum of the tests')}")
    problems = format_problems(run.results) + kit_problems(run.results, pack=pack)
    for problem in problems:
        click.echo(f"problem: {visible(problem)}", err=True)
    if problems:
        sys.exit(1)
    click.echo("results.json follows Gradescope's documented format")


@main.command()
@click.argument("name")
@click.option("--title", default=None, help="The sheet's title [default: from NAME].")
def new(name: str, title: str | None) -> None:
    """Scaffold an assignment NAME: assignments/NAME/ (spec.py, NAME.ipynb) and solutions/NAME/.

    The example question (the Jacobian of z = tanh(Wx)) builds, grades its samples and passes
    the generic tests as generated; replace it with the sheet's questions (docs/authoring.md).
    """
    from .pack.scaffold import scaffold

    with _friendly_errors():
        made = scaffold(name, title=title)
    click.echo(f"assignment: {made.pack}")
    click.echo(f"solutions:  {made.solutions}")
    click.echo(f"next: python -m autograder demo --assignment {name}")


@main.command("sync-tests")
@assignment_option("The assignment whose master to update [default: the course's default].")
def sync_tests(assignment: str | None) -> None:
    """Write the master notebook's test cells from the assignment's spec.

    Each question's cells between BEGIN TESTS and END TESTS become one public form check and one
    hidden cell per case of the spec, with the spec's points; nothing else changes. `build`
    refuses a master whose test cells disagree with the spec.
    """
    from .pack.master import sync_master

    with _friendly_errors():
        pack = registry.load(_assignment(assignment))
        changed = sync_master(pack)
    click.echo(
        f"rewrote the test cells of {', '.join(changed)}" if changed else "test cells up to date"
    )


def _notebook_assignment(notebook: Path) -> str:
    """The pack a notebook looks like, else the course's default."""
    import nbformat

    from .pack.infer import infer

    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception:  # noqa: BLE001 - an unreadable notebook is Otter's to report
        return registry.default_name()
    try:
        return infer([nb])
    except KitError:
        return registry.default_name()


UNISOLATED_WARNING = (
    "warning: --unsafe-no-isolation: student code runs without the sandbox, with your rights "
    "(your files, the other submissions, the network); every result and feedback file says so"
)


def _warn_unisolated() -> None:
    console.print(f"[bold yellow]{escape(UNISOLATED_WARNING)}[/]", soft_wrap=True, highlight=False)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Turn the kit's expected errors into a clear message and exit code 2 (no traceback)."""
    try:
        yield
    except EXPECTED_ERRORS as error:
        message = escape(visible(str(error)))
        console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
        sys.exit(2)


@contextmanager
def _stoppable(
    out: Path,
) -> Iterator[Callable[[Iterable[Submission]], Callable[[Result], None]]]:
    """Grade with Ctrl-C/SIGTERM handled (``interrupts.py``); yields the progress-bar factory.

    A painter process (``figures.py``) imports matplotlib meanwhile and draws the report's
    figures; a batch of more than ``PAINT_AHEAD_LIMIT`` submissions to grade stops it.

    A stop while grading prints how far the batch got and exits with 130 (SIGINT) or 143
    (SIGTERM); the progress bar is stopped first, so the terminal is left as it was. When every
    running submission was abandoned (nothing left to clean up), the exit skips Python's own
    teardown of the modules Otter, pandas and Dask loaded, which takes longer than the stop itself
    (about a second).
    """
    bars: list[Progress] = []
    try:
        with interrupts.handle_signals(), painting() as painter:
            yield partial(_progress_bar, bars=bars, painter=painter)
    except GradingInterrupted as stop:
        _stop_bars(bars)
        console.print(
            f"[bold yellow]interrupted[/] by {signal.Signals(stop.signum).name}: "
            f"{stop.cached + stop.reused} of {stop.total} submission(s) graded and kept in "
            f"{escape(str(out / CACHE_DIR))} ({stop.graded} in this run). Nothing else was "
            "written: gradebook.csv, results/ and the other outputs are as they were. "
            "Run the same command again to resume.",
            soft_wrap=True,
            highlight=False,
        )
        if stop.settled:
            sys.stdout.flush()
            sys.stderr.flush()
            logging.shutdown()
            # The judge workers' queues: their semaphores are unlinked here, as a normal exit
            # would (else the resource tracker warns of "leaked semaphore objects").
            vars(multiprocessing.util)["_run_finalizers"](0)  # private: not in the stubs
            os._exit(interrupts.exit_status(stop.signum))
        sys.exit(interrupts.exit_status(stop.signum))
    except interrupts.Interrupted as stop:
        _stop_bars(bars)
        console.print(
            f"[bold yellow]interrupted[/] by {signal.Signals(stop.signum).name}: no output was "
            f"written; anything graded is kept in {escape(str(out / CACHE_DIR))}. "
            "Run the same command again to resume.",
            soft_wrap=True,
            highlight=False,
        )
        sys.exit(interrupts.exit_status(stop.signum))
    finally:
        _stop_bars(bars)


def _stop_bars(bars: list[Progress]) -> None:
    for bar in bars:
        bar.stop()


def _exit_if_stopped() -> None:
    """Exit with the signal's status if one arrived while the outputs were being written."""
    signum = interrupts.requested_signal()
    if signum is not None:
        click.echo(
            f"interrupted by {signal.Signals(signum).name} while writing the outputs: every "
            "submission was graded and the outputs were completed first",
            err=True,
        )
        sys.exit(interrupts.exit_status(signum))


def _progress_bar(submissions: Iterable[Submission], *, bars: list[Progress], painter: Painter):
    total = sum(1 for _ in submissions)  # holds no submission (nor its notebook)
    if total > PAINT_AHEAD_LIMIT:
        painter.close()
    progress = Progress(
        TextColumn("grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", markup=False),  # student ids are not markup
        console=console,
        transient=False,
    )
    bars.append(progress)
    task = progress.add_task("", total=total)
    progress.start()
    done = {"n": 0}

    def on_done(result: Result) -> None:
        done["n"] += 1
        student = visible(str(result["student"]), keep_newlines=False)
        progress.update(task, advance=1, description=f"{student}: {result['status']}")
        if done["n"] == total:
            progress.stop()

    if not total:
        progress.stop()
    return on_done


REGRADE_ROWS = 20
"""Changes a regrade prints at most; the rest are in its file."""


def _report_regrade(regrade: RegradeReport) -> None:
    """The answers a regrade changed, as a table (capped at :data:`REGRADE_ROWS` rows)."""
    from rich.table import Table

    changes = regrade.changes
    which = ", ".join(regrade.questions)
    if not changes:
        click.echo(f"regrade of {which}: no answer changed ({regrade.regraded} submission(s))")
        click.echo(f"changes:   {regrade.path}")
        return
    table = Table(title=f"Regrade of {which}: {len(changes)} answer(s) changed")
    for column in ("student", "question", "old", "new", "tags", "human mark", "final"):
        table.add_column(column, justify="right" if column in ("old", "new", "final") else "left")
    for change in changes[:REGRADE_ROWS]:
        old = "-" if change.old_points is None else f"{change.old_points:g}"
        if change.old_status not in (None, change.new_status):
            old += f" ({change.old_status})"
        new = f"{change.new_points:g}"
        if change.new_status != "graded":
            new += f" ({change.new_status})"
        tags = " ".join(change.old_tags) or "-"
        if change.old_tags != change.new_tags:
            tags += f" -> {' '.join(change.new_tags) or '-'}"
        final = "" if change.final_points is None else f"{change.final_points:g}"
        table.add_row(
            escape(visible(change.student, keep_newlines=False)),
            escape(change.question),
            old,
            new,
            escape(visible(tags, keep_newlines=False)),
            "yes, flagged" if change.human_mark else "",
            final,
        )
    Console().print(table)
    if len(changes) > REGRADE_ROWS:
        click.echo(f"... and {len(changes) - REGRADE_ROWS} more, see {regrade.path}")
    flagged = len(regrade.flagged)
    click.echo(
        f"regraded:  {regrade.regraded} submission(s) for {which} "
        f"({regrade.carried} kept their other questions from the cache)"
    )
    if flagged:
        click.echo(
            f"flagged:   {flagged} answer(s) under a human mark, for review (review app: "
            "needs attention)"
        )
    click.echo(f"changes:   {regrade.path}")


def _report(run: GradeRun) -> None:
    from rich.table import Table

    from . import gradebook
    from .report import summary_lines

    pack = run.pack
    if pack is None:  # grade() always names the assignment it graded
        raise click.ClickException("the run names no assignment")
    table = Table(title="Per-question summary (graded submissions)")
    summary = gradebook.summary_table(run.gradebook, pack=pack)
    for column in summary.columns:
        table.add_column(str(column), justify="right" if column != "question" else "left")
    for row in summary.itertuples(index=False):
        table.add_row(*[f"{v:.2f}" if isinstance(v, float) else escape(visible(v)) for v in row])
    Console().print(table)
    for line in summary_lines(run.gradebook, run.results, pack=pack):
        click.echo(visible(line))
    counts = run.gradebook["status"].value_counts().to_dict()
    click.echo("status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if run.reused:
        click.echo(f"reused:    {run.reused} cached result(s) (--force grades them again)")
    out = run.gradebook_path.parent
    click.echo(f"gradebook: {run.gradebook_path}")
    click.echo(f"results:   {run.results_dir}")
    click.echo(f"report:    {out / 'report.html'}")
    click.echo(f"exports:   {out / 'canvas.csv'}, {out / 'moodle.csv'}, {out / 'long.csv'}")
    click.echo(f"feedback:  {out / 'feedback'}")
    click.echo(f"manifest:  {out / 'assignment.json'}")
