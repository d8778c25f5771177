"""Tests for the case runner ``autograder.checks.runner`` and the instances behind it.

Answers are compiled from the source strings of Exercise 2's sample catalogue
(``solutions/math_primer/samples.py``, which the Otter tests also use) into a namespace with ``np`` and the notebook's stable ``softmax``, registered in
``linecache`` the way IPython registers cells, so ``inspect.getsource`` sees them as it would in a
notebook. No Otter and no notebooks here.
"""

from __future__ import annotations

import inspect
import itertools
import linecache
from collections.abc import Callable

import numpy as np
import pytest

from autograder.checks import instances as inst
from autograder.checks import runner
from autograder.checks.runner import (
    CALL_TIMEOUT_ENV,
    STRUCTURAL_TAGS,
    TAG_LINE,
    CaseResult,
    call_and_check,
)
from autograder.pack import Instance, load
from helpers import MP, MP_SAMPLES

samples = MP_SAMPLES
CASES = MP.cases
TAGS = MP.vocabulary
TARGETS = {q.id: q.functions for q in MP.questions}


def run_case(*args, **kwargs) -> CaseResult:
    """The runner on Exercise 2's pack."""
    return runner.run_case(*args, pack=MP, **kwargs)


def check_form(*args) -> CaseResult:
    """The public check on Exercise 2's pack."""
    return runner.check_form(*args, pack=MP)


pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered in exp:RuntimeWarning",
    "ignore:invalid value encountered in divide:RuntimeWarning",
)
"""The catalogue's naive softmax overflows on large logits by design (the `not_stable` mistake)."""

KEY = "test-student"
"""The seed key used unless a test is about keys."""

NOTEBOOK_SOFTMAX = (
    "def softmax(z):\n"
    "    z = np.asarray(z, dtype=float)\n"
    "    e = np.exp(z - np.max(z))\n"
    "    return e / e.sum()\n"
)
"""The stable softmax the student notebook gives (answers may call it)."""

_cells = itertools.count()


def run_cell(source: str, namespace: dict | None = None) -> dict:
    """Execute source like a notebook cell: registered in linecache so getsource works."""
    filename = f"<answer-cell-{next(_cells)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    ns = namespace if namespace is not None else {"np": np}
    exec(compile(source, filename, "exec"), ns)  # noqa: S102 - test answers from the catalogue
    return ns


def answer(source: str) -> dict:
    """A fresh student namespace: np, the given softmax, then the answer cell."""
    ns = run_cell(NOTEBOOK_SOFTMAX)
    return run_cell(source, ns)


def functions(question: str, ns: dict) -> list[object]:
    """The question's functions from a namespace, in TARGETS order (None when undefined)."""
    return [ns.get(t.name) for t in TARGETS[question]]


def all_cases(question: str, fns: list[object], *, key: str = KEY) -> list[CaseResult]:
    return [run_case(question, case, *fns, key=key) for case in CASES[question]]


def correct(question: str) -> list[object]:
    return functions(question, answer(samples.correct[question]))


QUESTIONS = list(CASES)
QUESTION_CASES = [(q, c) for q in CASES for c in CASES[q]]
EQUIVALENT = [(q, i) for q, forms in samples.equivalent.items() for i in range(len(forms))]


def _mistake_id(m: tuple[str, str, str]) -> str:
    return f"{m[0]}-{m[1]}"


# --- correct and equivalent answers earn everything ------------------------------------------


@pytest.mark.parametrize("key", [KEY, ""])
@pytest.mark.parametrize("question", QUESTIONS)
def test_correct_answer_passes_every_case(question: str, key: str) -> None:
    """Does the model answer pass every case of its question?"""
    for result in all_cases(question, correct(question), key=key):
        assert result.passed, result.report()
        assert result.tags == ()


@pytest.mark.parametrize(("question", "index"), EQUIVALENT)
def test_equivalent_form_passes_every_case(question: str, index: int) -> None:
    """Does every other correct form (loops, einsum, inv, pinv, QR, ...) earn full points?"""
    fns = functions(question, answer(samples.equivalent[question][index]))
    for result in all_cases(question, fns):
        assert result.passed, result.report()


# --- every catalogued mistake loses points with its tag --------------------------------------


@pytest.mark.parametrize("mistake", samples.mistakes, ids=_mistake_id)
def test_mistake_fails_with_its_tag(mistake: tuple[str, str, str], monkeypatch) -> None:
    """Does each catalogued mistake fail at least one case, with its tag among the failed cases'
    tags, and never pass all cases?"""
    question, tag, source = mistake
    monkeypatch.setenv(CALL_TIMEOUT_ENV, "1")
    results = all_cases(question, functions(question, answer(source)))
    failed = [r for r in results if not r.passed]
    assert failed, f"{question} {tag}: passed every case"
    union = set().union(*(r.tags for r in failed))
    assert tag in union, f"{question}: expected {tag!r}, got {sorted(union)}"
    for r in failed:
        assert r.tags, "a failed case must carry at least one tag"
        assert set(r.tags) <= set(TAGS)


@pytest.mark.parametrize(
    "mistake", [m for m in samples.mistakes if m[1] not in ("missing", "timeout")], ids=_mistake_id
)
def test_report_ends_with_diagnosis_line(mistake: tuple[str, str, str]) -> None:
    """Does a failure report give the message, a hint of one of its tags, and end with a
    `diagnosis:` line listing the tags?"""
    question, _, source = mistake
    fns = functions(question, answer(source))
    for result in all_cases(question, fns):
        if result.passed:
            continue
        report = result.report()
        *body, last = report.splitlines()
        assert last == f"{TAG_LINE} {', '.join(result.tags)}"
        text = "\n".join(body)
        assert text.startswith(result.message)
        assert any(TAGS[t] in text for t in result.tags)


# --- missing answers --------------------------------------------------------------------------

PLACEHOLDERS = {
    "ellipsis": "def jacobian_Wx(W, x):\n    ...\n",
    "pass": "def jacobian_Wx(W, x):\n    pass\n",
    "docstring": 'def jacobian_Wx(W, x):\n    """Jacobian of z = Wx."""\n    ...\n',
    "comment": "def jacobian_Wx(W, x):\n    # YOUR CODE HERE\n    ...\n",
}


@pytest.mark.parametrize("source", PLACEHOLDERS.values(), ids=PLACEHOLDERS.keys())
def test_template_body_is_missing(source: str) -> None:
    """Is a function whose body is still the template's `...` reported as missing?"""
    fn = answer(source)["jacobian_Wx"]
    assert "..." in inspect.getsource(fn) or "pass" in inspect.getsource(fn)
    for result in all_cases("q1a", [fn]):
        assert not result.passed
        assert result.tags == ("missing",)
    assert check_form("q1a", fn).tags == ("missing",)


def test_placeholder_detection_is_not_fooled_by_a_real_body() -> None:
    """Is a function with a real body (defined the same way) not taken for the template?"""
    fn = answer("def jacobian_Wx(W, x):\n    # uses ...\n    return W\n")["jacobian_Wx"]
    assert run_case("q1a", "typical", fn, key=KEY).passed


def test_placeholder_from_an_imported_file(tmp_path, monkeypatch) -> None:
    """Is a `...` body recognised in a function imported from a .py file too?"""
    (tmp_path / "student_answer_q1a.py").write_text(PLACEHOLDERS["ellipsis"], encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import student_answer_q1a

    result = run_case("q1a", "typical", student_answer_q1a.jacobian_Wx, key=KEY)
    assert result.tags == ("missing",)


@pytest.mark.parametrize(
    "value",
    [None, 42, "jacobian_Wx", np.ones((3, 5)), [np.ones((3, 5))]],
    ids=["None", "int", "str", "array", "list"],
)
def test_undefined_or_non_callable_is_missing(value: object) -> None:
    """Is an undefined (None) or non-callable answer reported as missing, in every case?"""
    for result in all_cases("q1a", [value]):
        assert not result.passed
        assert result.tags == ("missing",)
        assert "jacobian_Wx" in result.message


def test_returning_ellipsis_is_missing() -> None:
    """Is a function that returns `...` reported as missing?"""
    fn = answer("def jacobian_Wx(W, x):\n    return ...\n")["jacobian_Wx"]
    assert run_case("q1a", "typical", fn, key=KEY).tags == ("missing",)


def test_second_function_missing() -> None:
    """Is a question with two functions missing when only the first is answered?"""
    diag, _ = correct("q2a")
    result = run_case("q2a", "typical", diag, None, key=KEY)
    assert result.tags == ("missing",)
    assert "softmax_jacobian" in result.message


# --- seeding ----------------------------------------------------------------------------------


def draw_all(question: str, case: str, key: str) -> list[list[Instance]]:
    return [runner.draw(MP, question, case, t, key=key) for t in TARGETS[question]]


def arrays_of(draws: list[list[Instance]]) -> list[np.ndarray]:
    out = []
    for instances in draws:
        for i in instances:
            out += [a for a in i.args if isinstance(a, np.ndarray)]
            out += [i.expected, *i.alternatives.values()]
    return out


@pytest.mark.parametrize(("question", "case"), QUESTION_CASES)
def test_same_key_draws_identical_instances(question: str, case: str) -> None:
    """Does a regrade of the same student draw exactly the same instances?"""
    first, again = draw_all(question, case, "alice"), draw_all(question, case, "alice")
    a, b = arrays_of(first), arrays_of(again)
    assert len(a) == len(b) > 0
    assert all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))
    for xs, ys in zip(first, again):
        assert [i.what for i in xs] == [i.what for i in ys]
        for x, y in zip(xs, ys):
            assert [f for f in x.args if callable(f)] == [f for f in y.args if callable(f)]


@pytest.mark.parametrize(("question", "case"), QUESTION_CASES)
def test_different_keys_draw_different_instances(question: str, case: str) -> None:
    """Do two students draw different instances?"""
    a, b = arrays_of(draw_all(question, case, "alice")), arrays_of(draw_all(question, case, "bob"))
    assert len(a) == len(b)
    assert any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, b))


def _recorder() -> tuple[Callable, list[np.ndarray]]:
    seen: list[np.ndarray] = []

    def jacobian_Wx(W, x):
        seen.append(np.array(W, copy=True))
        return np.array(W, dtype=float)

    return jacobian_Wx, seen


def test_run_case_reads_the_key_from_the_environment(monkeypatch) -> None:
    """Does run_case with key=None seed from MATH_PRIMER_STUDENT?"""
    monkeypatch.setenv(inst.SEED_ENV, "bob")
    from_env, seen_env = _recorder()
    explicit, seen_bob = _recorder()
    other, seen_carol = _recorder()
    assert run_case("q1a", "typical", from_env).passed
    assert run_case("q1a", "typical", explicit, key="bob").passed
    assert run_case("q1a", "typical", other, key="carol").passed
    assert len(seen_env) == len(seen_bob) > 0
    assert all(np.array_equal(a, b) for a, b in zip(seen_env, seen_bob))
    assert not all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(seen_env, seen_carol)
    )


# --- the runner protects the oracle from the student's function -------------------------------

MUTATING = {
    "q1a": "def jacobian_Wx(W, x):\n    J = np.array(W, dtype=float)\n    W[...] = 0\n"
    "    x[...] = 0\n    return J\n",
    "q1d": "def dL_dW(dL_dz, x):\n    G = np.outer(dL_dz, x)\n    dL_dz *= -1\n    x += 1\n"
    "    return G\n",
    "q2b": "def cross_entropy_grad(z, y):\n    g = softmax(z) - y\n    z += 1e3\n    y[...] = 0\n"
    "    return g\n",
    "q3": "def mse_minimizer(X, y):\n    w = np.linalg.lstsq(X, y, rcond=None)[0]\n    X *= 2\n"
    "    y[...] = 0\n    return w\n",
}
"""Correct answers that then overwrite their inputs in place."""


@pytest.mark.parametrize("question", MUTATING)
def test_mutating_inputs_does_not_change_the_oracle(question: str) -> None:
    """Does a function that overwrites its inputs leave the instance (inputs and expected answer)
    untouched, and still pass?"""
    (target,) = TARGETS[question]
    fn = answer(MUTATING[question])[target.name]
    for case in CASES[question]:
        instances = runner.draw(MP, question, case, target, key=KEY)
        before = [
            ([np.copy(a) for a in i.args if isinstance(a, np.ndarray)], np.copy(i.expected))
            for i in instances
        ]
        for i in instances:
            outcome = call_and_check(target, fn, i, limit=None)
            assert outcome.passed, outcome.message
        for i, (args, expected) in zip(instances, before):
            after = [a for a in i.args if isinstance(a, np.ndarray)]
            assert all(np.array_equal(a, b) for a, b in zip(after, args))
            assert np.array_equal(i.expected, expected)
        assert run_case(question, case, fn, key=KEY).passed


def test_a_function_calling_ahead_gets_the_announced_arguments_themselves() -> None:
    """Does a function that runs elsewhere (a CallsAhead: it only sends the bytes of its
    arguments) get the very objects it was announced, so the judge matches each call to the
    one sent ahead by identity, while a plain function gets copies?"""
    (target,) = TARGETS["q1a"]
    (plain,) = correct("q1a")
    announced: list[tuple] = []
    received: list[tuple] = []

    class Ahead(runner.CallsAhead):
        def call_ahead(self, calls: list[tuple]) -> None:
            announced.extend(calls)

        def __call__(self, *args):
            received.append(args)
            return plain(*args)

    assert run_case("q1a", "typical", Ahead(), key=KEY, memo={}).passed  # the judge's memo
    assert len(received) == len(announced) > 0
    assert all(a is b for got, sent in zip(received, announced) for a, b in zip(got, sent))
    copies: list[tuple] = []
    instance = runner.draw(MP, "q1a", "typical", target, key=KEY)[0]
    outcome = call_and_check(target, lambda *a: copies.append(a) or plain(*a), instance, limit=None)
    assert outcome.passed
    assert all(a is not b for a, b in zip(copies[0], instance.args) if isinstance(b, np.ndarray))


# --- the public form check --------------------------------------------------------------------


@pytest.mark.parametrize("question", QUESTIONS)
def test_form_check_passes_correct_answer(question: str) -> None:
    """Does the public check accept the model answer?"""
    result = check_form(question, *correct(question))
    assert result.passed, result.report()
    assert result.case == "form"


def _mistake(question: str, tag: str) -> str:
    (source,) = [s for q, t, s in samples.mistakes if (q, t) == (question, tag)]
    return source


VALUE_MISTAKES = [
    ("q1c", "scaled"),
    ("q1d", "sign_flipped"),
    ("q2a", "diag_only"),
    ("q2a", "sign_flipped"),
    ("q2b", "dL_dyhat"),
    ("q2b", "sign_flipped"),
    ("q3", "scaled"),
    ("q3", "wrong_value"),
]
"""Right form, wrong values (several of them square matrices): the public check stays silent."""


@pytest.mark.parametrize(("question", "tag"), VALUE_MISTAKES)
def test_form_check_ignores_value_mistakes(question: str, tag: str) -> None:
    """Does the public check pass an answer whose only problem is its values?"""
    assert tag not in STRUCTURAL_TAGS
    result = check_form(question, *functions(question, answer(_mistake(question, tag))))
    assert result.passed, result.report()


STRUCTURAL_MISTAKES = [
    ("q1a", "transposed", "wrong_shape"),
    ("q1b", "wrong_shape", "wrong_shape"),
    ("q1c", "missing_diag", "wrong_shape"),
    ("q1a", "wrong_type", "wrong_type"),
    ("q1a", "exception", "exception"),
    ("q3", "not_finite", "not_finite"),
    ("q3", "missing", "missing"),
]
"""(question, catalogued mistake, the structural tag the public check must report)."""


@pytest.mark.parametrize(("question", "mistake", "tag"), STRUCTURAL_MISTAKES)
def test_form_check_reports_structural_problems_only(question: str, mistake: str, tag: str) -> None:
    """Does the public check fail a structural problem and report only structural tags (no value
    diagnosis such as `transposed` or `missing_diag`)?"""
    result = check_form(question, *functions(question, answer(_mistake(question, mistake))))
    assert not result.passed
    assert tag in result.tags
    assert set(result.tags) <= STRUCTURAL_TAGS
    assert result.report().splitlines()[-1] == f"{TAG_LINE} {', '.join(result.tags)}"


def test_transposed_square_answer_passes_form_but_not_hidden_case() -> None:
    """Does an answer transposed on square inputs pass the public form check (no public instance
    is a square non-symmetric matrix, and `transposed` is not structural) while the hidden
    typical case, which has a square W, fails with exactly `transposed`?"""
    fn = answer("def jacobian_Wx(W, x):\n    n, d = W.shape\n    return W.T if n == d else W\n")[
        "jacobian_Wx"
    ]
    assert "transposed" not in STRUCTURAL_TAGS
    assert check_form("q1a", fn).passed
    assert run_case("q1a", "typical", fn, key=KEY).tags == ("transposed",)


# --- misuse by the kit's author raises typed errors -------------------------------------------


@pytest.mark.parametrize(
    ("question", "count"), [("q1a", 0), ("q1a", 2), ("q2a", 1), ("q2a", 3), ("q3", 2)]
)
def test_wrong_number_of_functions_is_a_type_error(question: str, count: int) -> None:
    """Is passing the wrong number of functions a TypeError, for run_case and check_form?"""
    fns = [lambda *a: None] * count
    with pytest.raises(TypeError, match=question):
        run_case(question, next(iter(CASES[question])), *fns, key=KEY)
    with pytest.raises(TypeError, match=question):
        check_form(question, *fns)


@pytest.mark.parametrize(
    ("question", "case"), [("q9", "typical"), ("q1a", "large"), ("q1a", "form"), ("Q1A", "typical")]
)
def test_unknown_question_or_case_is_a_key_error(question: str, case: str) -> None:
    """Is an unknown question or case a KeyError?"""
    with pytest.raises(KeyError):
        run_case(question, case, lambda W, x: W, key=KEY)


def test_unknown_question_form_is_a_key_error() -> None:
    """Is the public check of an unknown question a KeyError?"""
    with pytest.raises(KeyError):
        check_form("q9", lambda W, x: W)


SOFTMAX = ("softmax_diag_derivative", "softmax_jacobian")


def _flat_arrays(instance: Instance) -> list[np.ndarray]:
    parts = instance.expected if isinstance(instance.expected, tuple) else (instance.expected,)
    known = [
        v
        for a in instance.alternatives.values()
        for v in (a.values() if isinstance(a, dict) else [a])
    ]
    return [*(a for a in instance.args if isinstance(a, np.ndarray)), *parts, *known]


@pytest.mark.parametrize("pack_name", ["math_primer", "backprop"])
def test_one_submissions_memo_changes_no_instance(pack_name: str) -> None:
    """Are the instances of one submission's memo (draws shared by functions that draw alike,
    a Jacobian shared with its diagonal, known mistakes worked out late) bit for bit those drawn
    case by case without one?"""
    pack = load(pack_name)
    memo: runner.Memo = {}
    for question in pack.questions:
        for case in question.cases:
            for target in question.functions:
                alone = runner.draw(pack, question.id, case.name, target, key="carol")
                kept = list(
                    runner._lazy_draw(pack, question.id, case.name, target, key="carol", memo=memo)
                )
                assert [i.what for i in kept] == [i.what for i in alone]
                for mine, theirs in zip(kept, alone, strict=True):
                    a, b = _flat_arrays(mine), _flat_arrays(theirs)
                    assert list(mine.alternatives) == list(theirs.alternatives)
                    assert [x.tobytes() for x in a] == [y.tobytes() for y in b]
    if pack_name == "math_primer":  # softmax's diagonal and full Jacobian: one draw
        diagonal, full = (memo["q2a", "typical", name, "carol"][0] for name in SOFTMAX)
        assert diagonal is full
