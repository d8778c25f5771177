"""Run a question's case against the student's functions; the entry point of the Otter tests.

A hidden test cell in the master notebook is one line: ``assert_case("q1a", "typical", fn)``.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..givens import is_placeholder
from . import instances as inst
from .compare import Outcome
from .questions import BASELINE_CASE, CASES, TARGETS, Instance, Target
from .tags import hint

CALL_TIMEOUT_ENV = "MATH_PRIMER_CALL_TIMEOUT"
"""Environment variable overriding the per-call time limit (seconds, default 10)."""


def call_timeout() -> float:
    """Seconds one call of a student's function may take (enforced where signals are available):
    10, or the value of ``MATH_PRIMER_CALL_TIMEOUT``."""
    try:
        return float(os.environ.get(CALL_TIMEOUT_ENV, "10"))
    except ValueError:
        return 10.0


SPECIAL_CASE_TAGS = {"edge": "edge_case", "large": "not_stable"}
"""A case whose failure, while the first typical instance passes, earns one more tag."""

STRUCTURAL_TAGS = frozenset(
    {"missing", "exception", "timeout", "wrong_type", "wrong_shape", "not_finite"}
)
"""Tags the public form checks report; value mistakes are left to the hidden tests."""

TAG_LINE = "diagnosis:"
"""Failure messages end with ``diagnosis: tag, tag``; the kit's engines parse that line."""


@dataclass(frozen=True)
class CaseResult:
    """The result of one case of one question."""

    question: str
    case: str
    passed: bool
    tags: tuple[str, ...]
    message: str

    def text(self) -> str:
        """The message as students see it, with the hint of its most specific tag."""
        advice = hint(self.tags)
        return f"{self.message}. Hint: {advice}" if advice else self.message

    def report(self) -> str:
        """:meth:`text`, then the machine-readable diagnosis line."""
        return f"{self.text()}\n{TAG_LINE} {', '.join(self.tags)}"


class CheckFailed(AssertionError):
    """Raised inside an Otter test case when the student's answer fails a case."""


class CallTimeout(BaseException):
    """A student's function ran past its time limit, given in seconds as the first argument
    (a BaseException: ``except Exception`` in student code cannot swallow it)."""


@contextmanager
def _time_limit(seconds: float):
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def _raise(signum, frame):
        raise CallTimeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _availability(target: Target, fn: object) -> Outcome | None:
    if fn is None:
        return Outcome(False, ("missing",), f"`{target.function}` is not defined")
    if not callable(fn):
        kind = getattr(fn, "type_name", None) or type(fn).__name__
        return Outcome(False, ("missing",), f"`{target.function}` is a {kind}, not a function")
    if getattr(fn, "template_placeholder", False) is True or is_placeholder(fn):
        return Outcome(False, ("missing",), f"`{target.function}` still has the template's `...`")
    return None


def _copy(arg: object) -> object:
    return arg.copy() if isinstance(arg, np.ndarray) else arg


def call_and_check(
    target: Target, fn: Callable, instance: Instance, *, limit: float | None
) -> Outcome:
    """Call the student's function on fresh copies of the inputs and judge the answer.

    ``limit`` is the per-call time limit enforced here by SIGALRM; ``None`` when ``fn`` enforces
    its own (the judge's remote functions raise :class:`CallTimeout` themselves).
    """
    label = f"`{target.function}` on {instance.what}"
    try:
        if limit is None:
            answer = fn(*(_copy(a) for a in instance.args))
        else:
            with _time_limit(limit):
                answer = fn(*(_copy(a) for a in instance.args))
    except CallTimeout as exc:
        seconds = exc.args[0] if exc.args else limit
        return Outcome(False, ("timeout",), f"{label} ran longer than {seconds:g} s")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - student errors become results
        name = getattr(exc, "remote_type", None) or type(exc).__name__
        return Outcome(False, ("exception",), f"{label} raised {name}: {exc}")
    return target.check(answer, instance, label)


def _first_failure(
    target: Target, fn: Callable, instances: list[Instance], limit: float | None
) -> Outcome | None:
    for instance in instances:
        outcome = call_and_check(target, fn, instance, limit=limit)
        if not outcome.passed:
            return outcome
    return None


_FROM_ENV = -1.0


def run_case(
    question: str,
    case: str,
    *functions: object,
    key: str | None = None,
    call_limit: float | None = _FROM_ENV,
) -> CaseResult:
    """Check one case of one question against the student's functions.

    Args:
        question: a question id, e.g. ``"q1a"``.
        case: one of ``CASES[question]``.
        functions: the student's functions, in the order of ``TARGETS[question]``.
        key: the per-student seed key; by default read from the environment.
        call_limit: seconds per call enforced in this process (default: ``call_timeout()``);
            ``None`` when the functions enforce their own limit.

    Returns:
        The case result; it never raises for anything the student's code does.
    """
    if question not in TARGETS or case not in CASES.get(question, {}):
        raise KeyError(f"unknown question/case {question!r}/{case!r}")
    targets = TARGETS[question]
    if len(functions) != len(targets):
        raise TypeError(f"{question} takes {len(targets)} function(s), got {len(functions)}")
    key = inst.seed_key() if key is None else key
    limit = call_timeout() if call_limit == _FROM_ENV else call_limit
    for target, fn in zip(targets, functions):
        missing = _availability(target, fn)
        if missing is not None:
            return CaseResult(question, case, False, missing.tags, missing.message)
        rng = inst.rng_for(question, case, key=key)
        failure = _first_failure(target, fn, target.draw(rng, case), limit)
        if failure is None:
            continue
        tags = failure.tags
        extra = SPECIAL_CASE_TAGS.get(case)
        if extra is not None and "timeout" not in tags:
            baseline = target.draw(inst.rng_for(question, BASELINE_CASE, key=key), BASELINE_CASE)
            if _first_failure(target, fn, baseline[:1], limit) is None:
                tags = (extra, *tags) if extra not in tags else tags
        return CaseResult(question, case, False, tags, failure.message)
    return CaseResult(question, case, True, (), "passed")


def assert_case(question: str, case: str, *functions: object) -> None:
    """The body of a hidden Otter test: raise :class:`CheckFailed` with the report on failure."""
    result = run_case(question, case, *functions)
    if not result.passed:
        raise CheckFailed(result.report())


def check_form(question: str, *functions: object) -> CaseResult:
    """The public check: is each function defined, and does it return a finite array of the right
    shape on one simple instance? Values are not judged here."""
    targets = TARGETS[question]
    if len(functions) != len(targets):
        raise TypeError(f"{question} takes {len(targets)} function(s), got {len(functions)}")
    for target, fn in zip(targets, functions):
        missing = _availability(target, fn)
        if missing is not None:
            return CaseResult(question, "form", False, missing.tags, missing.message)
        instance = target.draw(inst.rng_for(question, "public", key="public"), BASELINE_CASE)[0]
        outcome = call_and_check(target, fn, instance, limit=call_timeout())
        structural = tuple(t for t in outcome.tags if t in STRUCTURAL_TAGS)
        if structural:
            return CaseResult(question, "form", False, structural, outcome.message)
    return CaseResult(question, "form", True, (), "the answer has the right form")


def assert_form(question: str, *functions: object) -> None:
    """The body of a public Otter test."""
    result = check_form(question, *functions)
    if not result.passed:
        raise CheckFailed(result.report())
