"""Generic tests, run for every pack: adding a pack to assignments/ adds these tests.

Parametrized over every pack in ``assignments/``, the tiny fixture pack
(``tests/fixtures/assignments/tiny``) and a pack freshly scaffolded by ``new``. For each: the
master agrees with the spec; the reference solution and the sample correct answers earn full
marks, through the runner, the judge and the Otter path; a blank notebook earns 0 with
``missing``; every catalogued mistake and every declared misconception earns its tag and not full
marks, as do the generic mutants of the reference (sign, scale, transpose, diagonal); the closed
forms are proven with sympy; and the oracle (finite differences) agrees with sympy.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import linecache
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import numpy as np
import pytest

from autograder import samples as kit_samples
from autograder.build import Build, build
from autograder.checks import runner
from autograder.checks.runner import CALL_TIMEOUT_ENV, judge_answer
from autograder.grading import grade
from autograder.pack import DEFAULT_TOLERANCE, Derivative, Pack, derive, load_path, registry
from autograder.pack.master import _blocks, check_master, derivation_cell_of
from autograder.pack.scaffold import scaffold
from autograder.samples import Samples, load_samples, solutions_dir

pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered in exp:RuntimeWarning",
    "ignore:invalid value encountered in divide:RuntimeWarning",
)

FIXTURES = Path(__file__).parent / "fixtures" / "assignments"
PACK_IDS = [*registry.names(), *(f"fixture:{p.name}" for p in sorted(FIXTURES.iterdir())), "new"]
"""Every repository pack, every fixture pack, and one made by ``new`` as generated."""
KEY = "generic-tests"
ORACLE_RTOL = DEFAULT_TOLERANCE.rtol / 10
"""The oracle must be ten times more accurate than the tolerance students are graded with."""


@pytest.fixture(scope="session")
def new_pack(tmp_path_factory: pytest.TempPathFactory) -> Pack:
    """A pack exactly as ``python -m autograder new`` writes it."""
    made = scaffold("scaffolded_sheet", root=tmp_path_factory.mktemp("course"))
    return load_path(made.pack)


@pytest.fixture(scope="session", params=PACK_IDS)
def pack(request: pytest.FixtureRequest) -> Pack:
    """Each pack in turn."""
    if request.param == "new":
        return request.getfixturevalue("new_pack")
    if request.param.startswith("fixture:"):
        return load_path(FIXTURES / request.param.split(":", 1)[1])
    return registry.load(request.param)


@pytest.fixture(scope="session")
def pack_samples(pack: Pack) -> Samples:
    return load_samples(pack)


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_reference_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def reference(pack: Pack) -> ModuleType:
    """The pack's ``solutions/<name>/reference.py``."""
    return _module(solutions_dir(pack) / "reference.py")


_BUILDS: dict[Path, Build] = {}


@pytest.fixture(scope="session")
def pack_build(pack: Pack, request: pytest.FixtureRequest, tmp_path_factory) -> Build:
    """The pack built by the real Otter Assign (Exercise 2's shared session build)."""
    if pack.name == "math_primer" and pack.folder == registry.find("math_primer"):
        return request.getfixturevalue("built")
    if pack.folder not in _BUILDS:
        _BUILDS[pack.folder] = build(out=tmp_path_factory.mktemp(pack.name) / "dist", pack=pack)
    return _BUILDS[pack.folder]


# --- running answers in-process, as notebook cells ------------------------------------------

_cells = itertools.count()


def _run_cell(source: str, namespace: dict) -> dict:
    filename = f"<generic-cell-{next(_cells)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the pack's own samples
    return namespace


def _given_cells(pack: Pack) -> list[str]:
    """The master's code cells outside the questions (imports, helpers such as a softmax)."""
    nb = nbformat.read(str(pack.folder / f"{pack.name}.ipynb"), as_version=4)
    inside, cells = False, []
    for cell in nb.cells:
        text = cell.source.strip().lower()
        if cell.cell_type == "raw" and text.startswith("# begin question"):
            inside = True
        elif cell.cell_type == "raw" and text.startswith("# end question"):
            inside = False
        elif cell.cell_type == "code" and not inside and "otter" not in cell.source:
            cells.append(cell.source)
    return cells


def answer(pack: Pack, *sources: str) -> dict:
    """A student namespace: the master's given cells, then the answer cells."""
    namespace: dict = {"__name__": "__main__"}
    for source in [*_given_cells(pack), *sources]:
        _run_cell(source, namespace)
    return namespace


def results_of(pack: Pack, question: str, functions: list) -> list[runner.CaseResult]:
    return [
        runner.run_case(question, case, *functions, pack=pack, key=KEY)
        for case in pack.question(question).case_points
    ]


def functions_in(pack: Pack, question: str, namespace: dict) -> list:
    return [namespace.get(name) for name in pack.question(question).function_names]


# --- the master and the samples -------------------------------------------------------------


def test_master_agrees_with_the_spec(pack):
    """Do the master's questions, points and test cells agree with the spec?"""
    assert check_master(pack).name == f"{pack.name}.ipynb"
    nb = nbformat.read(str(pack.folder / f"{pack.name}.ipynb"), as_version=4)
    assert [b.name for b in _blocks(nb, "master")] == list(pack.question_ids)


def test_samples_answer_every_question(pack, pack_samples):
    """Is there a correct sample answer for every question, and only for the pack's questions?"""
    assert set(pack_samples.correct) == set(pack.question_ids)


def test_correct_and_equivalent_answers_pass_every_case(pack, pack_samples):
    """Does every correct sample answer (and every other correct form) pass every case?"""
    for question in pack.question_ids:
        for source in [pack_samples.correct[question], *pack_samples.equivalent.get(question, [])]:
            functions = functions_in(pack, question, answer(pack, source))
            for result in results_of(pack, question, functions):
                assert result.passed, (question, result.report())


def test_reference_solution_passes_every_case(pack, reference):
    """Does the reference solution in solutions/<name>/reference.py pass every case?"""
    for question in pack.questions:
        functions = [getattr(reference, name) for name in question.function_names]
        for result in results_of(pack, question.id, functions):
            assert result.passed, (question.id, result.report())


def test_every_catalogued_mistake_earns_its_tag_and_not_full_marks(pack, pack_samples, monkeypatch):
    """Does each sample mistake fail a case of its question with its tag among the tags?"""
    monkeypatch.setenv(CALL_TIMEOUT_ENV, "1")
    assert pack_samples.mistakes, "a pack needs sample mistakes"
    for question, tag, source in pack_samples.mistakes:
        results = results_of(pack, question, functions_in(pack, question, answer(pack, source)))
        failed = [r for r in results if not r.passed]
        assert failed, f"{question} {tag}: full marks"
        tags = set().union(*(r.tags for r in failed))
        assert tag in tags, (question, tag, sorted(tags))
        assert tags <= set(pack.vocabulary), sorted(tags - set(pack.vocabulary))


def test_every_declared_misconception_has_a_sample(pack, pack_samples):
    """Is every pack-specific misconception exercised by a sample mistake (through student code)?"""
    declared = {m.tag for q in pack.questions for t in q.functions for m in t.misconceptions}
    sampled = {tag for _, tag, _ in pack_samples.mistakes}
    assert declared <= sampled, sorted(declared - sampled)


def _instances(pack: Pack):
    """(question, case, target, instance) for every instance of every case."""
    for question in pack.questions:
        for case in question.cases:
            for target in question.functions:
                for instance in runner.draw(pack, question.id, case.name, target, key=KEY):
                    yield question, case, target, instance


def test_declared_and_derived_misconceptions_are_diagnosed(pack):
    """Does every known wrong answer of every instance (the pack's misconceptions, `missing_diag`,
    `diag_only`) fail, tagged with its own tag?"""
    seen = set()
    for question, case, target, instance in _instances(pack):
        for tag, wrong in instance.alternatives.items():
            if target.returns is None:
                answer_ = wrong
            else:  # the wrong parts, the others right; skipped if the case judges none of them
                if not set(case.parts or target.returns) & set(wrong):
                    continue
                answer_ = tuple(
                    wrong.get(part, expected)
                    for part, expected in zip(target.returns, instance.expected)
                )
            outcome = judge_answer(target, answer_, instance, "the answer", parts=case.parts)
            assert not outcome.passed, (question.id, case.name, tag)
            assert tag in outcome.tags, (question.id, case.name, tag, outcome.tags)
            seen.add(tag)
    declared = {m.tag for q in pack.questions for t in q.functions for m in t.misconceptions}
    assert declared <= seen, sorted(declared - seen)


def _diagonal_only(v: np.ndarray) -> np.ndarray:
    """The diagonal of a square matrix (other answers unchanged, so they stay right)."""
    return np.diag(np.diag(v)) if v.ndim == 2 and v.shape[0] == v.shape[1] else v


def _mutants(reference_fn, expected_examples: list[np.ndarray]):
    """Generic mistakes made from the reference: (tag, function)."""

    def each(transform):
        def mutant(*args):
            value = reference_fn(*args)
            if isinstance(value, tuple):
                return tuple(transform(np.asarray(v, dtype=float)) for v in value)
            return transform(np.asarray(value, dtype=float))

        return mutant

    yield "sign_flipped", each(lambda v: -v)
    yield "scaled", each(lambda v: 2.0 * v)
    if any(e.ndim == 2 and e.shape[0] != e.shape[1] for e in expected_examples):
        yield "transposed", each(lambda v: v.T)
    if any(
        e.ndim == 2 and e.shape[0] == e.shape[1] > 1 and np.any(e - np.diag(np.diag(e)))
        for e in expected_examples
    ):
        yield "diag_only", each(_diagonal_only)


def test_generic_mutants_of_the_reference_earn_their_tags(pack, reference):
    """Do the sign-flipped, doubled, transposed and diagonal-only versions of the reference lose
    points with their tags, on every derivative question?"""
    for question in pack.questions:
        if len(question.functions) != 1:
            continue
        (target,) = question.functions
        if not isinstance(target, Derivative) or target.judge is not None:
            continue
        examples = []
        for case in question.cases:
            for instance in runner.draw(pack, question.id, case.name, target, key=KEY):
                expected = instance.expected
                examples += list(expected) if isinstance(expected, tuple) else [expected]
        for tag, mutant in _mutants(getattr(reference, target.name), examples):
            results = results_of(pack, question.id, [mutant])
            failed = [r for r in results if not r.passed]
            assert failed, (question.id, tag)
            assert tag in set().union(*(r.tags for r in failed)), (question.id, tag)


# --- mathematics ----------------------------------------------------------------------------


def _small_instances(pack: Pack, limit: int):
    for question, case, target, instance in _instances(pack):
        if not isinstance(target, Derivative) or target.sympy is None:
            continue
        arrays = [v for v in instance.inputs.values() if isinstance(v, np.ndarray)]
        if max(a.size for a in arrays) > limit or any(a.ndim > 2 for a in arrays):
            continue
        yield question, case, target, instance


def _is_zero(expression) -> bool:
    """Whether a sympy expression is identically zero: as a rational function of exponentials
    first (fast for softmax, tanh, cosh), else by sympy's simplify."""
    import sympy as sp

    if sp.cancel(sp.expand(sp.sympify(expression).rewrite(sp.exp))) == 0:
        return True
    return sp.simplify(expression) == 0


def test_closed_forms_are_proven_with_sympy(pack, reference):
    """Does every closed form of the reference solution equal the exact derivative of the forward
    map, symbolically, on the small instances' shapes?"""
    import sympy as sp

    closed_forms = getattr(reference, "CLOSED_FORMS", {})
    proven = set()
    shapes_done = set()
    for _question, _case, target, instance in _small_instances(pack, limit=6):
        if target.name not in closed_forms:
            continue
        key = (
            target.name,
            tuple((k, np.shape(v)) for k, v in instance.inputs.items()),
            tuple(v for v in instance.inputs.values() if isinstance(v, str)),
        )
        if key in shapes_done:
            continue
        shapes_done.add(key)
        values, _ = derive.symbolic_inputs(instance.inputs)
        closed = derive.call(closed_forms[target.name], values)
        parts = closed if isinstance(closed, tuple) else (closed,)
        for wrt, form in zip(target.wrt_names(), parts):
            exact = derive.symbolic_derivative(target, instance.inputs, wrt)
            got = list(form) if isinstance(form, sp.MatrixBase) else [form]
            assert len(got) == len(exact), (target.name, wrt)
            for a, b in zip(got, exact):
                assert _is_zero(a - b), (target.name, wrt, a, b)
        proven.add(target.name)
    assert proven == set(closed_forms), sorted(set(closed_forms) - proven)


def test_oracle_agrees_with_sympy(pack):
    """Do the finite differences agree with sympy's exact derivative (ten times tighter than the
    grading tolerance) on every instance small enough for sympy, edge sizes included?"""
    checked = 0
    for question, case, target, instance in _small_instances(pack, limit=16):
        if target.exact_if is not None and not derive.call(target.exact_if, instance.inputs):
            continue
        for wrt in target.wrt_names():
            exact, out_shape = derive.exact_jacobian(target, instance.inputs, wrt)
            fd, fd_shape = derive.fd_full_jacobian(target, instance.inputs, wrt)
            assert tuple(out_shape) == tuple(fd_shape)
            bound = ORACLE_RTOL * max(float(np.max(np.abs(exact))), 1.0)
            assert float(np.max(np.abs(fd - exact))) <= bound, (question.id, case.name, wrt)
            checked += 1
    assert checked > 0


# --- through the engines ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def graded(pack: Pack, pack_build: Build, pack_samples, tmp_path_factory) -> dict[str, dict]:
    """Reference (the master's solutions), correct sample and blank graded by the judge and by
    the Otter path (`otter run` with the judge plugin)."""
    template = nbformat.read(str(pack_build.student_notebook), as_version=4)
    reference_nb = nbformat.read(
        str(pack_build.out / "autograder" / f"{pack.name}.ipynb"), as_version=4
    )
    folder = tmp_path_factory.mktemp(f"{pack.name}-subs")
    notebooks = {
        "reference": reference_nb,
        "correct": kit_samples.fill(template, pack_samples.correct, pack=pack),
        "blank": template,
    }
    for name, nb in notebooks.items():
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    out = {}
    for engine in ("judge", "otter"):
        target = tmp_path_factory.mktemp(f"{pack.name}-{engine}")
        run = grade(
            submissions=folder,
            out=target,
            assignment=pack,
            build_dir=pack_build.out,
            engine=engine,
            jobs=2,
            timeout=120,
        )
        assert list(run.gradebook.columns) == list(pack.gradebook_columns)
        out[engine] = {
            p.stem: json.loads(p.read_text()) for p in (target / "results").glob("*.json")
        }
    return out


@pytest.mark.parametrize("engine", ["judge", "otter"])
def test_reference_and_correct_answers_earn_full_marks(graded, pack, engine):
    """Do the master's solutions and the sample correct answers earn every autograded point
    through the judge and the Otter path (a pack's manual derivation points wait for a TA)?"""
    for student in ("reference", "correct"):
        result = graded[engine][student]
        assert (result["status"], result["total"]) == ("graded", pack.autograded_points), result
        assert result["possible"] == pack.total_points, result


@pytest.mark.parametrize("engine", ["judge", "otter"])
def test_blank_notebook_earns_zero_with_missing(graded, pack, engine):
    """Does the untouched student notebook earn 0, graded, with `missing` on every question?"""
    result = graded[engine]["blank"]
    assert (result["status"], result["total"]) == ("graded", 0)
    assert all(q["tags"] == ["missing"] for q in result["questions"].values()), result


def test_validator_passes_correct_and_flags_blank(pack, pack_build, pack_samples, tmp_path):
    """Does the students' pre-submit check, run in a copy of the pack's student folder, pass the
    correct sample (exit 0) and flag every question of the blank notebook (exit 1)?"""
    folder = tmp_path / "student"
    shutil.copytree(pack_build.out / "student", folder)
    template = nbformat.read(str(pack_build.student_notebook), as_version=4)
    correct = kit_samples.fill(template, pack_samples.correct, pack=pack)
    for question in pack.questions:
        if question.derivation:
            cell = correct.cells[derivation_cell_of(correct, question.id)]
            cell.source = f"By the chain rule, for {question.id}: $J = W$."
    runs = {}
    for name, nb in (("correct", correct), ("blank", template)):
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
        proc = subprocess.run(
            [sys.executable, "-m", "autograder.validate", f"{name}.ipynb", "--timeout", "60"],
            cwd=folder,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        runs[name] = (proc.returncode, proc.stdout + proc.stderr)
    assert runs["correct"][0] == 0, runs["correct"][1]
    assert ", ".join(pack.question_ids) in runs["correct"][1]
    code, out = runs["blank"]
    assert code == 1, out
    problems = out.partition("Notes:")[0]
    assert all(f"  - {qid}: " in problems for qid in pack.question_ids), out


def test_a_wrong_closed_form_is_not_proven():
    """Does the symbolic check reject a closed form that is off (here: the sign of softmax's
    off-diagonal entries), so the proofs above can fail?"""
    import sympy as sp

    target = registry.load("math_primer").question("q2a").functions[1]
    inputs = {"z": np.zeros(3)}
    values, _ = derive.symbolic_inputs(inputs)
    e = values["z"].applyfunc(sp.exp)
    s = e / sum(e)
    wrong = sp.diag(*s) + s * s.T
    exact = derive.symbolic_derivative(target, inputs, "z")
    assert not all(_is_zero(a - b) for a, b in zip(wrong, exact))
    right = sp.diag(*s) - s * s.T
    assert all(_is_zero(a - b) for a, b in zip(right, exact))
