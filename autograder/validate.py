"""The students' pre-submit check: run the notebook as the grader will and say what would cost points.

Run from the student folder (the one ``build`` writes as ``DIR/student/``)::

    python -m autograder.validate math_primer.ipynb [--timeout 60]

The notebook is executed top to bottom in a fresh kernel (:mod:`nbclient`; working directory:
the notebook's folder; a cell running longer than ``--timeout`` seconds is interrupted and
reported as hanging), then one probe cell asks the same kernel, per question, whether its
functions are defined and what the public form check says (:func:`autograder.checks.runner.
check_form`: callable, shape, finite; never the values, never the hidden tests). Reported:

- functions the sheet asks for that are not defined (with the nearest name the notebook does
  define, for a renamed function);
- given cells that were edited or deleted, by comparing with the fingerprint of the given cells
  that ``build`` ships (:data:`GIVEN_FILE`, see :func:`given_fingerprints`);
- cells that raise or hang;
- the public checks' diagnoses;
- "Your derivation" cells left empty (a problem only when the pack gives them manual points).

The exit code is 0 when nothing would cost points, 1 when something would, 2 when the notebook
cannot be checked at all (a missing or broken file: one ``error:`` line).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import nbformat

from .errors import KitError
from .pack import registry
from .pack.master import derivation_cell_of, derivation_text
from .pack.spec import Pack

log = logging.getLogger(__name__)

GIVEN_FILE = "given_cells.json"
"""The fingerprint of the handed-out notebook's given cells, shipped in the student folder's
copy of the pack (``autograder/assignments/<name>/given_cells.json``)."""
ANSWER_TAG = "otter_answer_cell"
"""Otter Assign's tag of the cells students write in; every other code cell is given."""
DEFAULT_TIMEOUT = 60.0
"""Seconds one cell may run before it counts as hanging."""
PROBE_TIMEOUT = 120.0
"""Seconds the probe (every question's form check) may take."""
_PROBE_MARK = "@@autograder.validate@@"


class ValidateError(KitError):
    """The notebook cannot be checked at all (missing, not a notebook, no kernel)."""


@dataclass(frozen=True)
class Finding:
    """One thing the check found."""

    kind: str
    """``missing``, ``edited``, ``error``, ``timeout``, ``form``, ``derivation`` or ``passed``."""
    where: str
    """The question id, or ``cell N`` (1-based, as Jupyter counts)."""
    message: str
    """What to fix, in the student's terms (never expected values or test code)."""
    costs_points: bool = True
    """Would the grader take points for it?"""


@dataclass(frozen=True)
class Report:
    """The outcome of one check."""

    notebook: Path
    findings: tuple[Finding, ...]
    seconds: float
    """Wall time of the whole check (kernel start included)."""

    @property
    def ok(self) -> bool:
        """Nothing would cost points."""
        return not any(f.costs_points for f in self.findings)


def _normal(source: str | list) -> str:
    text = "".join(source) if isinstance(source, list) else str(source)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _label(source: str) -> str:
    first = next((line for line in _normal(source).splitlines() if line.strip()), "")
    return first if len(first) <= 60 else first[:57] + "..."


def _given(cell: dict) -> bool:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return cell.get("cell_type") == "code" and ANSWER_TAG not in tags


def given_fingerprints(notebook: nbformat.NotebookNode) -> list[dict]:
    """Fingerprints (cell id, sha256 of the source without trailing spaces, first line) of the
    given code cells of a handed-out notebook: every code cell Otter does not tag as an answer."""
    return [
        {
            "id": cell.get("id"),
            "sha256": hashlib.sha256(_normal(cell.source).encode()).hexdigest(),
            "label": _label(cell.source),
        }
        for cell in notebook.cells
        if _given(cell)
    ]


def write_given_file(*, notebook: Path, folder: Path) -> Path:
    """Write :data:`GIVEN_FILE` for a handed-out ``notebook`` into ``folder`` (``build``)."""
    nb = nbformat.read(str(notebook), as_version=4)
    path = folder / GIVEN_FILE
    path.write_text(json.dumps(given_fingerprints(nb), indent=1) + "\n")
    return path


def compare_given(notebook: nbformat.NotebookNode, given: list[dict]) -> list[Finding]:
    """Given cells that are edited (same cell id, other source) or gone (no cell with the same
    source anywhere)."""
    by_id = {c.get("id"): (i, c) for i, c in enumerate(notebook.cells) if c.get("id")}
    sources = {
        hashlib.sha256(_normal(c.source).encode()).hexdigest()
        for c in notebook.cells
        if c.get("cell_type") == "code"
    }
    findings = []
    for entry in given:
        if entry["sha256"] in sources:
            continue
        found = by_id.get(entry.get("id"))
        if found is not None and found[1].get("cell_type") == "code":
            where = f"cell {found[0] + 1}"
            message = f"the given cell `{entry['label']}` was edited: restore it as handed out"
        else:
            where = "notebook"
            message = (
                f"the given cell `{entry['label']}` was deleted or edited: restore it as handed out"
            )
        findings.append(Finding("edited", where, message))
    return findings


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``.

    Raises:
        ValidateError: it is missing, not a file, or not a readable notebook.
    """
    if not path.exists():
        raise ValidateError(f"{path}: no such file")
    if not path.is_file():
        raise ValidateError(f"{path}: not a file")
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except (
        OSError,
        ValueError,
        nbformat.ValidationError,
    ) as exc:  # not JSON, not UTF-8, bad schema
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValidateError(f"{path}: not a readable notebook ({reason})") from None
    if not isinstance(notebook.get("cells"), list):
        raise ValidateError(f"{path}: not a readable notebook (no cells)")
    return notebook


def _pack_of(notebook: nbformat.NotebookNode) -> Pack:
    name = ((notebook.get("metadata") or {}).get("otter") or {}).get("assignment_name")
    return registry.load(name) if name else registry.load(registry.default_name())


def _probe_source(pack: Pack) -> str:
    questions = [(q.id, list(q.function_names)) for q in pack.questions]
    return (
        "def __autograder_probe():\n"
        "    import json, types\n"
        "    from autograder.checks.runner import check_form\n"
        "    space = globals()\n"
        "    report = {}\n"
        f"    for qid, names in {questions!r}:\n"
        "        missing = [n for n in names if not callable(space.get(n))]\n"
        "        if missing:\n"
        "            report[qid] = {'missing': missing}\n"
        "            continue\n"
        f"        r = check_form(qid, *[space[n] for n in names], pack={pack.name!r})\n"
        "        report[qid] = {'passed': r.passed, 'text': r.text()}\n"
        "    defined = sorted(n for n, v in space.items() if isinstance(v, types.FunctionType)\n"
        "                     and not n.startswith('_'))\n"
        f"    print({_PROBE_MARK!r} + json.dumps({{'questions': report, 'defined': defined}}))\n"
        "__autograder_probe()\n"
    )


def _error_of(cell: dict) -> str | None:
    for output in cell.get("outputs") or []:
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}".rstrip(": ")
    return None


def execute(
    notebook: nbformat.NotebookNode, *, folder: Path, pack: Pack, timeout: float
) -> tuple[list[Finding], dict | None]:
    """Run every cell in a fresh kernel, then the probe; return the cells that failed or hung
    and the probe's answer (None when the kernel could not answer)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.from_dict(json.loads(json.dumps(notebook)))  # a copy: outputs are not kept
    client = NotebookClient(
        nb,
        timeout=math.ceil(timeout),  # nbclient's timeout is a whole number of seconds
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    findings: list[Finding] = []
    probe = nbformat.v4.new_code_cell(_probe_source(pack))
    try:
        with client.setup_kernel(stderr=subprocess.DEVNULL):  # not the kernel's TCP warning
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                started = time.monotonic()
                client.execute_cell(cell, index)
                where, label = f"cell {index + 1}", _label(cell.source)
                if time.monotonic() - started >= timeout:
                    findings.append(
                        Finding(
                            "timeout",
                            where,
                            f"`{label}` ran longer than {timeout:g} s and was stopped (the "
                            "grader stops it too): look for an endless loop or a huge input",
                        )
                    )
                elif (error := _error_of(cell)) is not None:
                    findings.append(Finding("error", where, f"`{label}` fails: {error}"))
            nb.cells.append(probe)
            client.timeout = math.ceil(max(PROBE_TIMEOUT, timeout))
            client.execute_cell(probe, len(nb.cells) - 1)
    except DeadKernelError:
        findings.append(Finding("error", "notebook", "the Python kernel died while running it"))
        return findings, None
    except (OSError, RuntimeError, KeyError, TimeoutError) as exc:  # no kernel (spec, start)
        raise ValidateError(f"cannot run the notebook: {type(exc).__name__}: {exc}") from None
    for output in probe.get("outputs") or []:
        for line in str(output.get("text") or "").splitlines():
            if line.startswith(_PROBE_MARK):
                return findings, json.loads(line[len(_PROBE_MARK) :])
    return findings, None


def _question_findings(pack: Pack, probe: dict | None) -> list[Finding]:
    if probe is None:
        return [Finding("error", "notebook", "the check of the functions could not run")]
    findings = []
    asked = {n for q in pack.questions for n in q.function_names}
    defined = [n for n in probe.get("defined", []) if n not in asked]
    for question in pack.questions:
        answer = probe["questions"].get(question.id) or {}
        for name in answer.get("missing", []):
            near = difflib.get_close_matches(name, defined, n=1, cutoff=0.6)
            hint = f" (did you rename it? the notebook defines `{near[0]}`)" if near else ""
            findings.append(
                Finding("missing", question.id, f"`{name}` is not defined{hint}: 0 points")
            )
        if "passed" in answer:
            kind = "passed" if answer["passed"] else "form"
            findings.append(Finding(kind, question.id, answer["text"], not answer["passed"]))
    return findings


def _derivation_findings(pack: Pack, notebook: nbformat.NotebookNode) -> list[Finding]:
    findings = []
    for question in pack.questions:
        if not question.derivation:
            continue
        index = derivation_cell_of(notebook, question.id)
        text = derivation_text(notebook.cells[index]) if index is not None else ""
        if text:
            continue
        points = question.derivation_points
        worth = f"worth {points:g} point(s), marked by a TA" if points else "not scored"
        where = "missing" if index is None else "empty"
        findings.append(
            Finding(
                "derivation",
                question.id,
                f'the "Your derivation" cell is {where} ({worth})',
                points > 0,
            )
        )
    return findings


def validate(*, notebook: Path, timeout: float = DEFAULT_TIMEOUT) -> Report:
    """Check one notebook (see the module docstring).

    Raises:
        ValidateError: the notebook or its assignment cannot be read, or no kernel starts.
    """
    started = time.monotonic()
    notebook = Path(notebook)
    nb = read_notebook(notebook)
    try:
        pack = _pack_of(nb)
    except KitError as exc:
        raise ValidateError(f"{notebook}: {exc}") from None
    findings: list[Finding] = []
    given_path = registry.SHIPPED_DIR / pack.name / GIVEN_FILE
    if given_path.is_file():
        findings += compare_given(nb, json.loads(given_path.read_text()))
    else:
        log.info("no %s: given cells not compared", given_path)
    cells, probe = execute(nb, folder=notebook.resolve().parent, pack=pack, timeout=timeout)
    findings += cells
    findings += _question_findings(pack, probe)
    findings += _derivation_findings(pack, nb)
    return Report(notebook, tuple(findings), time.monotonic() - started)


def render(report: Report) -> str:
    """The report as printed: problems first, then what passed, then the verdict."""
    lines = [f"Checked {report.notebook} in {report.seconds:.1f} s (run top to bottom, fresh)."]
    problems = [f for f in report.findings if f.costs_points]
    notes = [f for f in report.findings if not f.costs_points and f.kind != "passed"]
    passed = [f for f in report.findings if f.kind == "passed"]
    for title, group in (("Would cost points", problems), ("Notes", notes)):
        if group:
            lines.append(f"{title}:")
            lines += [f"  - {f.where}: {f.message}" for f in group]
    if passed:
        names = ", ".join(f.where for f in passed)
        lines.append(f"Form checks passed (callable, shape, finite; not the values): {names}")
    lines.append(
        "No problems found. The hidden tests run on other inputs after you submit."
        if report.ok
        else "Fix the problems above before you submit."
    )
    return "\n".join(lines)


@click.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds one cell may run before it counts as hanging.",
)
def main(notebook: Path, timeout: float) -> None:
    """Run NOTEBOOK top to bottom as the grader will and report what would cost points."""
    try:
        report = validate(notebook=notebook, timeout=timeout)
    except ValidateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(render(report))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
