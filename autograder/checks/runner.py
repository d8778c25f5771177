"""Run a question's case against the student's functions; the entry point of the Otter tests.

A hidden test cell in the master notebook is one line: ``assert_case("q1", "typical", fn)``; the
pack is the one shipped with this copy of the kit (:func:`autograder.pack.current`). The judge
and the tests call :func:`run_case` with the pack given explicitly.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import KitError
from ..givens import is_placeholder
from ..pack import derive, registry
from ..pack.spec import Instance, Pack, Target
from . import instances as inst
from .compare import Outcome, compare, to_array
from .tags import STRUCTURAL_TAGS as _STRUCTURAL
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


FORM_CHECKED = ("callable", "shape", "finite")
"""What a public form check checks: each function is defined and callable, returns an array of
the expected shape, with finite entries. Never the values."""
FORM_PASSED = (
    f"form checks passed: {', '.join(FORM_CHECKED)}; the values are not checked here, the hidden "
    "tests run on other inputs after you submit"
)
"""What a passing public check says (the kit's message and the ``success_message`` of the
public test cells, which Otter prints after its own "All test cases passed!")."""

STRUCTURAL_TAGS = frozenset(_STRUCTURAL)
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
    advice: str = ""
    """The hint of the most specific tag, from the pack's vocabulary."""

    def text(self) -> str:
        """The message as students see it, with the hint of its most specific tag."""
        return f"{self.message}. Hint: {self.advice}" if self.advice else self.message

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


def _availability(target: Target, fn: object) -> Callable[..., object] | Outcome:
    """The student's function, or why it cannot be called."""
    if fn is None:
        return Outcome(False, ("missing",), f"`{target.name}` is not defined")
    if not callable(fn):
        kind = getattr(fn, "type_name", None) or type(fn).__name__
        return Outcome(False, ("missing",), f"`{target.name}` is a {kind}, not a function")
    if getattr(fn, "template_placeholder", False) is True or (
        not isinstance(fn, CallsAhead) and is_placeholder(fn)  # no source here: it runs elsewhere
    ):
        return Outcome(False, ("missing",), f"`{target.name}` still has the template's `...`")
    return fn


def _copy(arg: object) -> object:
    return arg.copy() if isinstance(arg, np.ndarray) else arg


def _part_alternatives(instance: Instance, part: str) -> dict[str, object]:
    """The known wrong values of one part of a tuple-valued answer, by tag."""
    return {
        tag: alt[part]
        for tag, alt in instance.alternatives.items()
        if isinstance(alt, dict) and part in alt
    }


def judge_answer(
    target: Target,
    answer: object,
    instance: Instance,
    label: str,
    *,
    parts: tuple[str, ...] | None = None,
) -> Outcome:
    """Judge one answer to one instance: the target's own judge, or :func:`compare` (per part
    for a function returning a tuple; ``parts`` limits which parts are judged)."""
    if target.judge is not None:
        return target.judge(answer, instance, label)
    expected = instance.expected
    if target.returns is None:
        if not isinstance(expected, np.ndarray):
            raise KitError(
                f"{target.name}: the reference is a {type(expected).__name__}, not an array"
            )
        return compare(
            answer,
            expected,
            tol=target.tolerance,
            label=label,
            shape_hint=target.shape_hint,
            alternatives=derive.Deferred(
                lambda: {
                    t: a for t, a in instance.alternatives.items() if isinstance(a, np.ndarray)
                }
            ),
        )
    names = ", ".join(target.returns)
    if not isinstance(answer, (tuple, list)):
        converted = to_array(answer, label=label)
        kind = (
            converted[1].message.split(" returned ", 1)[-1]
            if converted[1] is not None
            else f"array {converted[0].shape}"
        )
        return Outcome(
            False,
            ("wrong_type",),
            f"{label} returned {kind}; expected a tuple of {len(target.returns)} arrays ({names})",
        )
    if len(answer) != len(target.returns):
        return Outcome(
            False,
            ("wrong_type",),
            f"{label} returned {len(answer)} values; expected {len(target.returns)} ({names})",
        )
    for index, part in enumerate(target.returns):
        if parts is not None and part not in parts:
            continue
        known = derive.Deferred(functools.partial(_part_alternatives, instance, part))
        outcome = compare(
            answer[index],
            expected[index],
            tol=target.tolerance,
            label=f"{part} from {label}",
            shape_hint=target.shape_hint,
            alternatives=known,
        )
        if not outcome.passed:
            return outcome
    return Outcome(True)


def call_and_check(
    target: Target,
    fn: Callable,
    instance: Instance,
    *,
    limit: float | None,
    parts: tuple[str, ...] | None = None,
) -> Outcome:
    """Call the student's function on fresh copies of the inputs and judge the answer.

    ``limit`` is the per-call time limit enforced here by SIGALRM; ``None`` when ``fn`` enforces
    its own (the judge's remote functions raise :class:`CallTimeout` themselves).

    Raises:
        KitError: the grader could not make the call (never the student's fault).
    """
    label = f"`{target.name}` on {instance.what}"
    # A function that runs elsewhere gets the arguments themselves: it only sends their bytes.
    args = instance.args if isinstance(fn, CallsAhead) else tuple(map(_copy, instance.args))
    try:
        if limit is None:
            answer = fn(*args)
        else:
            with _time_limit(limit):
                answer = fn(*args)
    except CallTimeout as exc:
        seconds = exc.args[0] if exc.args else limit
        return Outcome(False, ("timeout",), f"{label} ran longer than {seconds:g} s")
    except KitError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - student errors become results
        name = getattr(exc, "remote_type", None) or type(exc).__name__
        return Outcome(False, ("exception",), f"{label} raised {name}: {exc}")
    return judge_answer(target, answer, instance, label, parts=parts)


def _first_failure(
    target: Target,
    fn: Callable,
    instances: Iterable[Instance],
    limit: float | None,
    parts: tuple[str, ...] | None = None,
) -> Outcome | None:
    for instance in instances:
        outcome = call_and_check(target, fn, instance, limit=limit, parts=parts)
        if not outcome.passed:
            return outcome
    return None


def draw(pack: Pack, question: str, case: str, target: Target, *, key: str) -> list[Instance]:
    """The instances of one case of one of the question's functions, for this student key."""
    spec_case = pack.question(question).case(case)
    rng = inst.rng_for(question, case, key=key, salt=pack.seed_salt)
    return derive.instances(target, rng, spec_case)


class CallsAhead:
    """A student function that can be told the calls coming next (the judge's remote functions:
    it sends them to the evaluator ahead of time). The runner announces a case's calls in order;
    it may stop early (at the first failure), never make others in their place.

    Such a function runs in another process and only sends its arguments there: it never changes
    them, so the runner passes an instance's arguments themselves (the same objects it announced),
    not copies."""

    def call_ahead(self, calls: list[tuple]) -> None:
        """The argument tuples of the next calls, in order."""


Memo = dict[tuple, Any]
"""What one submission's cases derived already (the same student ``key`` throughout):

- ``(question, case, function, key)``: the drawn inputs of the case's instances for that function,
  the instances built from them so far and the student's arguments of every instance;
- ``(question, case, key, draw, draw_case)``: the drawn inputs, shared by the functions of a
  question that draw alike (the same draw functions and seed: the same values);
- ``(JACOBIANS,)``: the derivatives computed so far (:func:`derive.build_instance`), so that two
  functions of the same forward map on the same inputs (a Jacobian and its diagonal) share them.
"""
JACOBIANS = "jacobians"


def _drawn(
    pack: Pack, question: str, case: str, target: Target, *, key: str, memo: Memo | None
) -> tuple[list, list[Instance], list[tuple]]:
    slot = (question, case, target.name, key)
    entry = memo.get(slot) if memo is not None else None
    if entry is None:
        shared = (question, case, key, target.draw, target.draw_case)
        inputs = memo.get(shared) if memo is not None else None
        if inputs is None:
            spec_case = pack.question(question).case(case)
            rng = inst.rng_for(question, case, key=key, salt=pack.seed_salt)
            inputs = derive.draw_inputs(target, rng, spec_case)
            if memo is not None:
                memo[shared] = inputs
        entry = (inputs, [], [])
        if memo is not None:
            memo[slot] = entry
    return entry


def _arguments(
    pack: Pack, question: str, case: str, target: Target, *, key: str, memo: Memo | None
) -> list[tuple]:
    """The student's arguments of every instance of the case (no reference derived)."""
    inputs, _, args = _drawn(pack, question, case, target, key=key, memo=memo)
    if len(args) < len(inputs):
        args[:] = [derive.student_args(target, values) for values in inputs]
    return args


def _lazy_draw(
    pack: Pack, question: str, case: str, target: Target, *, key: str, memo: Memo | None
) -> Iterator[Instance]:
    """:func:`draw`, each instance built (its reference derived) only when it is reached, and
    kept in ``memo`` when given: a case stops at its first failure, and the diagnosis of a later
    case reuses the baseline's first instance instead of deriving it again."""
    inputs, built, args = _drawn(pack, question, case, target, key=key, memo=memo)
    jacobians = None if memo is None else memo.setdefault((JACOBIANS,), {})
    for index, values in enumerate(inputs):
        if index == len(built):
            known = args[index] if index < len(args) else None
            built.append(derive.build_instance(target, values, known, jacobians=jacobians))
        yield built[index]


_FROM_ENV = -1.0


def _resolve(pack: Pack | str | None) -> Pack:
    return registry.current() if pack is None else registry.load(pack)


def _functions(pack: Pack, question: str, functions: tuple) -> tuple[Target, ...]:
    spec = pack.question(question)
    if len(functions) != len(spec.functions):
        raise TypeError(f"{question} takes {len(spec.functions)} function(s), got {len(functions)}")
    return spec.functions


def run_case(
    question: str,
    case: str,
    *functions: object,
    pack: Pack | str | None = None,
    key: str | None = None,
    call_limit: float | None = _FROM_ENV,
    memo: Memo | None = None,
) -> CaseResult:
    """Check one case of one question against the student's functions.

    Args:
        question: a question id of the pack, e.g. ``"q1"``.
        case: one of the question's case names.
        functions: the student's functions, in the order the question declares them.
        pack: the pack (or its name); default the one shipped with this copy of the kit.
        key: the per-student seed key; by default read from the environment.
        call_limit: seconds per call enforced in this process (default: ``call_timeout()``);
            ``None`` when the functions enforce their own limit.
        memo: a dict kept across the cases of one submission (the same ``key``), so that no
            instance is derived twice; its instances are never handed to the functions (they
            get copies of the arguments, but for a :class:`CallsAhead`, which cannot change
            them).

    Returns:
        The case result; it never raises for anything the student's code does.

    Raises:
        KeyError: an unknown question or case. KitError: the grader could not do its part.
    """
    pack = _resolve(pack)
    spec = pack.question(question)
    spec_case = spec.case(case)
    targets = _functions(pack, question, functions)
    key = inst.seed_key() if key is None else key
    limit = call_timeout() if call_limit == _FROM_ENV else call_limit

    def result(passed: bool, tags: tuple[str, ...], message: str) -> CaseResult:
        advice = hint(tags, pack.vocabulary) if tags else ""  # a pass has no hint
        return CaseResult(question, case, passed, tags, message, advice)

    baseline = spec.cases[0]
    for target, fn in zip(targets, functions):
        available = _availability(target, fn)
        if isinstance(available, Outcome):
            return result(False, available.tags, available.message)
        fn = available
        parts = spec_case.parts
        if isinstance(fn, CallsAhead):
            fn.call_ahead(_arguments(pack, question, case, target, key=key, memo=memo))
        drawn = _lazy_draw(pack, question, case, target, key=key, memo=memo)
        failure = _first_failure(target, fn, drawn, limit, parts)
        if failure is None:
            continue
        tags = failure.tags
        extra = spec_case.diagnosis
        if extra is not None and spec_case is not baseline and "timeout" not in tags:
            first = _lazy_draw(pack, question, baseline.name, target, key=key, memo=memo)
            if _first_failure(target, fn, itertools.islice(first, 1), limit, parts) is None:
                tags = (extra, *tags) if extra not in tags else tags
        return result(False, tags, failure.message)
    return result(True, (), "passed")


def assert_case(question: str, case: str, *functions: object) -> None:
    """The body of a hidden Otter test: raise :class:`CheckFailed` with the report on failure."""
    result = run_case(question, case, *functions)
    if not result.passed:
        raise CheckFailed(result.report())


def check_form(question: str, *functions: object, pack: Pack | str | None = None) -> CaseResult:
    """The public check: is each function defined, and does it return a finite array of the right
    shape on one simple instance? Values are not judged here."""
    pack = _resolve(pack)
    targets = _functions(pack, question, functions)
    baseline = pack.question(question).cases[0]
    vocabulary = pack.vocabulary
    for target, fn in zip(targets, functions):
        available = _availability(target, fn)
        if isinstance(available, Outcome):
            return CaseResult(
                question,
                "form",
                False,
                available.tags,
                available.message,
                hint(available.tags, vocabulary),
            )
        fn = available
        rng = inst.rng_for(question, "public", key="public", salt=pack.seed_salt)
        instance = derive.instances(target, rng, baseline)[0]
        outcome = call_and_check(target, fn, instance, limit=call_timeout())
        structural = tuple(t for t in outcome.tags if t in STRUCTURAL_TAGS)
        if structural:
            return CaseResult(
                question,
                "form",
                False,
                structural,
                outcome.message,
                hint(structural, vocabulary),
            )
    return CaseResult(question, "form", True, (), FORM_PASSED)


def assert_form(question: str, *functions: object) -> None:
    """The body of a public Otter test."""
    result = check_form(question, *functions)
    if not result.passed:
        raise CheckFailed(result.report())
