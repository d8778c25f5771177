"""The judge as an Otter plugin: ``otter run``, ``otter grade`` and Gradescope grade with it too.

Registered in the master notebook's assignment config (``plugins:``). Otter still runs the hidden
tests in the student's kernel; after that, this plugin grades the same notebook with the judge
(sandboxed evaluator, checks outside the student's reach) and its scores replace the kernel's, so
in-kernel tampering gains nothing. The kernel's own case results are kept in the plugin data for
comparison. Before grading, a ``.OTTER_LOG`` shipped with a submission is set aside unread (Otter
would unpickle it even with grade-from-log off) and reported.

It needs nothing beyond what the autograder zip carries: the ``autograder`` package in the zip's
``files/`` (the build puts that folder on ``sys.path`` in ``run_otter.py``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import nbformat
from otter.plugins import AbstractOtterPlugin

from ..checks.runner import TAG_LINE
from ..errors import KitError
from ..givens import SEED_ENV
from ..pack import registry
from ..pack.master import CASE_LINE, case_of_test
from ..results import question_entry
from .engine import (
    EvaluatorGone,
    IsolationUnavailable,
    JudgeConfig,
    check_isolation,
    judge_cases,
)

log = logging.getLogger(__name__)


def test_functions(test_file) -> dict[str, str]:
    """Otter's test case names (positional: ``q1 - 2``) -> the names of the test functions
    (``test_q1_typical``, which name the cases), read from the test file that ran (its results
    come back from the kernel without the functions)."""
    from otter.test_files.exception_test import ExceptionTestFile

    source = getattr(test_file, "source", None)
    try:
        if source:
            parsed = ExceptionTestFile.from_string(source, path=str(test_file.path))
        else:
            parsed = ExceptionTestFile.from_file(str(test_file.path))
    except Exception as exc:  # noqa: BLE001 - an unreadable test file: cases stay unmatched
        log.warning("judge plugin could not read the test file %s: %s", test_file.path, exc)
        return {}
    return {
        tc.name: getattr(getattr(tc.body, "test_func", None), "__name__", "")
        for tc in parsed.test_cases
    }


PLUGIN_NAME = "autograder.judge.otter_plugin.JudgePlugin"
OTTER_LOG = ".OTTER_LOG"
CONTAINER_NOTE = (
    "isolation: the container running Otter is the boundary; the judge's own sandbox is "
    "unavailable in it ({reason})"
)
"""The note of a result judged inside a container that does not allow the judge's sandbox."""


def plugin_config() -> JudgeConfig:
    """The judge's configuration inside Otter: its sandbox where the container allows one, else
    none (the container is then the only boundary, and every result says so)."""
    try:
        check_isolation()
    except IsolationUnavailable as exc:
        return JudgeConfig(isolate=False, unisolated_note=CONTAINER_NOTE.format(reason=exc))
    return JudgeConfig()


def student_key(metadata: dict | None) -> str:
    """The seed key: the kit's ``MATH_PRIMER_STUDENT``, else the Gradescope submitter, else ""."""
    if os.environ.get(SEED_ENV):
        return os.environ[SEED_ENV]
    users = (metadata or {}).get("users") or []
    if users and isinstance(users[0], dict):
        return str(users[0].get("sid") or users[0].get("email") or "")
    return ""


class JudgePlugin(AbstractOtterPlugin):
    """Replace the kernel's scores with the judge's."""

    ignored_log: bool = False

    def before_grading(self, config) -> None:
        """Keep grade-from-log off and set a shipped ``.OTTER_LOG`` aside without reading it."""
        config.grade_from_log = False
        log_file = Path(OTTER_LOG)
        if log_file.exists():
            log_file.rename(log_file.with_name(OTTER_LOG + ".ignored-by-judge"))
            self.ignored_log = True

    def after_grading(self, results) -> None:
        """Grade the notebook with the judge and make its case results the ones Otter reports."""
        path = Path(self.submission_path)
        try:
            notebook = nbformat.read(str(path), as_version=4)
        except Exception as exc:  # noqa: BLE001 - Otter reports its own error for such a file
            log.warning("judge plugin could not read %s: %s", path, exc)
            return
        student = student_key(self.submission_metadata)
        pack = registry.current()
        try:
            outcomes, notes = judge_cases(notebook, student, plugin_config(), pack=pack)
        except (EvaluatorGone, KitError) as exc:
            outcomes, notes = {}, [f"the judge could not grade: {exc}"]
        kernel = {}
        for question, test_file in results.results.items():
            if question not in pack.by_id:
                continue
            judged = outcomes.get(question, [])
            by_case = {o.case: o for o in judged}
            hidden = [r for r in test_file.test_case_results if (r.test_case.points or 0) > 0]
            kernel[question] = {
                "score": float(test_file.score),
                "passed": [bool(r.passed) for r in hidden],
            }
            functions = test_functions(test_file)
            for result in hidden:  # matched by the test function's name, never by position
                test = functions.get(result.test_case.name, "")
                case = case_of_test(pack.question(question), test)
                outcome = by_case.get(case) if case is not None else None
                result.passed = bool(outcome and outcome.passed)
                if result.passed:
                    result.message = f"✅ Test case passed (judge)\n{CASE_LINE} {case}"
                else:  # the format the kit's Otter engine parses, as raised by assert_case
                    text, tags = (outcome.text, outcome.tags) if outcome else ("not judged", ())
                    result.message = (
                        f"❌ Test case failed (judge)\nCheckFailed: {text}\n"
                        f"{TAG_LINE} {', '.join(tags)}\n{CASE_LINE} {case}"
                    )
            test_file.update_score(question_entry(question, judged or None, pack=pack)["score"])
        if self.ignored_log:
            notes.append(f"a {OTTER_LOG} in the submission was set aside unread")
        results.set_plugin_data(
            type(self).__name__, {"student": student, "kernel": kernel, "notes": notes}
        )
