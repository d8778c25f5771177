"""The Otter engine: grade one submission through ``otter run`` in a subprocess with a timeout.

The student's notebook is copied under the master's file name, ``<pack>.ipynb`` (Otter grades a
notebook only when its name matches), its kernel set to Python 3, and the per-student seed key passed through the
environment. Whatever happens, the result is one dict in the ``results/<student>.json`` format.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from .. import interrupts
from ..advice import advice_notes
from ..checks.runner import TAG_LINE
from ..givens import SEED_ENV
from ..intake import Submission, notebook_bytes
from ..pack import registry
from ..pack.master import case_of_test
from ..pack.spec import Pack
from ..results import CaseOutcome, Result, empty_result, graded_result
from . import kill_group, wait_stoppable

log = logging.getLogger(__name__)


def notebook_name(pack: Pack) -> str:
    """The master notebook's file name, under which every submission is graded."""
    return f"{pack.name}.ipynb"


WORKER = Path(__file__).with_name("otter_worker.py")
"""Run as a script (stdlib and otter only), so the kit's package is not importable in grading."""

_FAILURE = re.compile(
    r"CheckFailed: (?P<message>.*?)\n" + TAG_LINE + r" (?P<tags>[^\n]*)", re.DOTALL
)


def parse_case_message(message: str) -> tuple[tuple[str, ...], str]:
    """The diagnosis tags and the student-facing text of a failed Otter test case."""
    match = _FAILURE.search(message)
    if match is None:
        last = message.strip().splitlines()[-1] if message.strip() else "the test failed"
        return ("exception",), last
    tags = tuple(t.strip() for t in match["tags"].split(",") if t.strip())
    return tags, match["message"].strip()


def case_outcomes(question: str, data: dict | None, *, pack: Pack) -> list[CaseOutcome] | None:
    """A question's hidden cases from the worker's per-test-case data (public ones skipped).

    Cases are matched by their test's name (``test_<question>_<case>``), never by position; a
    hidden test that is no case of the spec keeps its test name and is noted as such.
    """
    if data is None:
        return None
    spec = pack.question(question)
    outcomes = []
    for case in data["cases"]:
        if case["points"] <= 0:
            continue
        test = str(case.get("name", ""))
        found = case_of_test(spec, f"{test}\n{case.get('message', '')}")
        name = found or f"unknown test {test or '?'}"
        tags, text = ((), "") if case["passed"] else parse_case_message(case["message"])
        outcomes.append(CaseOutcome(name, case["points"], case["passed"], tags, text))
    order = list(spec.case_points)
    outcomes.sort(key=lambda o: order.index(o.case) if o.case in order else len(order))
    return outcomes


def result_from_worker(
    student: str, data: dict, advice: dict[str, str] | None = None, *, pack: Pack
) -> Result:
    """The full result of a graded submission from the worker's JSON.

    With the judge plugin active (the master registers it), the scores are the judge's and the
    kernel's own scores are kept under ``kernel_scores``; a disagreement is noted.
    """
    outcomes = {q: case_outcomes(q, data["questions"].get(q), pack=pack) for q in pack.question_ids}
    plugin = data.get("judge_plugin") or {}
    notes = list(plugin.get("notes", []))
    kernel = {q: v["score"] for q, v in (plugin.get("kernel") or {}).items()}
    result = graded_result(
        student,
        {q: o for q, o in outcomes.items() if o is not None},
        pack=pack,
        advice=advice,
        notes=notes,
    )
    if kernel:
        result["kernel_scores"] = kernel
        differ = [q for q, v in kernel.items() if v != result["questions"][q]["score"]]
        if differ:
            result.setdefault("notes", []).append(
                "the tests run in the student's kernel disagree with the judge on "
                + ", ".join(differ)
                + " (the judge's scores are used)"
            )
    return result


def prepare_notebook(notebook: nbformat.NotebookNode, folder: Path, *, name: str) -> Path:
    """Write the submission under the master's name with a Python 3 kernel."""
    nb = nbformat.from_dict(notebook)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    path = folder / name
    path.write_bytes(notebook_bytes(nb))  # compact JSON: nbformat's indentation can balloon
    return path


def grade_submission(
    submission: Submission, *, autograder_zip: Path, timeout: float, pack: Pack | str | Path
) -> Result:
    """Grade one submission with ``otter run``; never raises for anything the submission does.

    ``pack`` may be a pack's name (resolved here, e.g. on a Dask worker).
    """
    pack = registry.load(pack)
    if submission.notebook is None:
        return empty_result(
            submission.student, "invalid", f"submission unusable: {submission.problem}", pack=pack
        )
    interrupts.check()  # a stopping batch starts no `otter run`
    with tempfile.TemporaryDirectory(prefix="mp-grade-") as scratch:
        folder = Path(scratch)
        notebook = prepare_notebook(submission.notebook, folder, name=notebook_name(pack))
        out_json = folder / "otter-results.json"
        env = {**os.environ, SEED_ENV: submission.student}
        command = [sys.executable, str(WORKER), str(autograder_zip), str(notebook), str(out_json)]
        proc = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        try:
            output = wait_stoppable(proc, timeout=timeout, output=True)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            log.warning("%s: timed out after %g s", submission.student, timeout)
            return empty_result(
                submission.student,
                "timeout",
                f"grading stopped after {timeout:g} s: a cell probably runs forever",
                pack=pack,
            )
        finally:
            kill_group(proc)
        if proc.returncode != 0 or not out_json.exists():
            tail = "\n".join(output.strip().splitlines()[-5:])
            log.warning(
                "%s: otter run failed (exit %s): %s", submission.student, proc.returncode, tail
            )
            return empty_result(submission.student, "error", f"otter run failed: {tail}", pack=pack)
        data = json.loads(out_json.read_text(encoding="utf-8"))
    if data.get("error"):
        return empty_result(
            submission.student, "error", f"otter run failed: {data['error']}", pack=pack
        )
    advice = advice_notes(submission.notebook, pack=pack)
    return result_from_worker(submission.student, data, advice, pack=pack)
