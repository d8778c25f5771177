"""Command line: ``python -m autograder build | grade | demo`` (a thin click layer)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import gradebook
from .build import BuildError
from .build import build as run_build
from .gradebook import GradebookError
from .grading import DEFAULT_TIMEOUT, ENGINES, GradeRun, GradingError, default_jobs
from .grading import grade as run_grade
from .intake import IntakeError, Submission
from .report import summary_lines
from .review.store import ReviewError

console = Console(stderr=True)
EXPECTED_ERRORS = (BuildError, GradebookError, GradingError, IntakeError, ReviewError)


jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Submissions graded in parallel [default: number of cores].",
)

build_dir_option = click.option(
    "--build-dir",
    type=click.Path(path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Where the built assignment is (built if needed).",
)


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Autograding kit for the Math Primer exercise (Otter-Grader)."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)]
    )


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Build folder.",
)
def build(out: Path) -> None:
    """Run Otter Assign: DIR/student/math_primer.ipynb and DIR/autograder/autograder.zip.

    Also writes DIR/autograder/autograder-offline.zip, for the offline grading image of
    scripts/docker_image.sh (grade --engine docker).
    """
    with _friendly_errors():
        with console.status("Running Otter Assign (it also checks the solutions pass)..."):
            result = run_build(out=out)
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
def grade(
    submissions: Path,
    out: Path,
    jobs: int | None,
    timeout: float,
    roster: Path | None,
    engine: str,
    build_dir: Path,
    scheduler: str | None,
    force: bool,
    overrides: Path | None,
) -> None:
    """Grade a folder of submissions and write OUT/gradebook.csv and OUT/results/."""
    with _friendly_errors():
        run = run_grade(
            submissions=submissions,
            out=out,
            build_dir=build_dir,
            jobs=jobs,
            timeout=timeout,
            roster=roster,
            engine=engine,
            progress=_progress_bar,
            scheduler=scheduler,
            force=force,
            overrides=overrides,
        )
    _report(run)


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Output folder.",
)
@jobs_option
def demo(out: Path, jobs: int | None) -> None:
    """Build, grade the embedded sample submissions and print a summary."""
    from .samples import write_samples

    with _friendly_errors():
        samples = write_samples(out / "submissions")
        click.echo(f"wrote {len(samples)} sample submissions to {out / 'submissions'}")
        run = run_grade(
            submissions=out / "submissions",
            out=out,
            build_dir=Path("dist"),
            jobs=jobs or default_jobs(),
            progress=_progress_bar,
        )
    _report(run)


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
def gradescope_check(notebook: Path, student: str, build_dir: Path) -> None:
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
        built = ensure_built(out=build_dir)
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
        click.echo(f"{test.get('name', '?'):<14} {score:<10} {test.get('visibility', 'visible')}")
    click.echo(f"score: {run.results.get('score', 'sum of the tests')}")
    problems = format_problems(run.results) + kit_problems(run.results)
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("results.json follows Gradescope's documented format")


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Turn the kit's expected errors into a clear message and exit code 2 (no traceback)."""
    try:
        yield
    except EXPECTED_ERRORS as error:
        console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
        sys.exit(2)


def _progress_bar(submissions: Iterable[Submission]):
    items = list(submissions)
    progress = Progress(
        TextColumn("grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    )
    task = progress.add_task("", total=len(items))
    progress.start()
    done = {"n": 0}

    def on_done(result: dict) -> None:
        done["n"] += 1
        progress.update(task, advance=1, description=f"{result['student']}: {result['status']}")
        if done["n"] == len(items):
            progress.stop()

    if not items:
        progress.stop()
    return on_done


def _report(run: GradeRun) -> None:
    table = Table(title="Per-question summary (graded submissions)")
    summary = gradebook.summary_table(run.gradebook)
    for column in summary.columns:
        table.add_column(str(column), justify="right" if column != "question" else "left")
    for row in summary.itertuples(index=False):
        table.add_row(*[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)
    for line in summary_lines(run.gradebook, run.results):
        click.echo(line)
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
