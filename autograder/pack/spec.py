"""The declarations an assignment pack is made of: ``assignments/<name>/spec.py`` uses these.

A pack declares *what* is asked; the kit derives *how* it is checked. The spec module of a pack
defines one module-level ``PACK = Pack(...)``:

    PACK = Pack(
        name="my_sheet", title="My Sheet",
        questions=(
            Question(id="q1", sheet="1-1", points=1, cases=(typical(0.75), edge(0.25)),
                     functions=(Derivative(name="jacobian_Wx", params=("W", "x"),
                                           forward=lambda W, x: W @ x, wrt="x",
                                           sympy=lambda W, x: W * x,
                                           draw=lambda rng, size: {...}),)),
        ),
    )

Vocabulary:

- an **input** is one named value drawn for an instance (``W``, ``x``, an elementwise function's
  name, ...). Every callable of a spec (``draw``, ``forward``, ``args``, ``describe``, a
  misconception's ``answer``, ...) is called with keywords and receives only the names its own
  signature lists, so ``lambda W, x: W @ x`` works when the instance also holds ``c``.
- an **instance** is one problem: its inputs, the arguments passed to the student's function,
  the reference answer and known wrong answers (:class:`Instance`).
- a **case** is a named group of instances worth a share of the question's points (partial credit
  per case); a case passes only if every instance in it passes.

Every class here is a frozen, keyword-only dataclass; a pack that contradicts itself raises
:class:`~autograder.errors.SpecError` when it is constructed, naming the bad value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..checks.compare import Outcome, Tolerance
from ..checks.tags import CASE_TAGS, FALLBACK_TAGS, GENERIC_TAGS
from ..errors import SpecError

Size = int | tuple[int, ...]
"""One instance size, e.g. ``(n, d)`` or ``N``; its meaning is up to the ``draw`` function."""
Inputs = dict[str, object]
"""The named inputs of one instance."""
Reference = np.ndarray | tuple[np.ndarray, ...]
"""A reference answer: an array, or for a tuple-valued function a tuple of arrays."""

DEFAULT_TOLERANCE = Tolerance(rtol=1e-6)
"""``|got - expected| <= 1e-6 * max(max|expected|, 1)``: central differences in float64 are
accurate to ~1e-10 on maps with curvature of order one, so any correct formula passes."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PACK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _fail(where: str, problem: str) -> SpecError:
    return SpecError(f"{where}: {problem}")


@dataclass(frozen=True, kw_only=True)
class Case:
    """A named group of instances worth a share of its question's points.

    Use the helpers :func:`typical`, :func:`edge` and :func:`large` for the usual three kinds.
    """

    name: str
    """Case name as used in results, ``long.csv`` and the test cell (``test_<q>_<name>``)."""
    points: float
    """Points the case is worth (the cases of a question add up to its points)."""
    sizes: tuple[Size, ...] = ()
    """One size per instance; each target's ``draw`` is called once per size."""
    diagnosis: str | None = None
    """A tag added when this case fails while the first instance of the question's baseline case
    (its first case) passes, e.g. ``edge_case`` for sizes of 1 or ``not_stable`` for large
    magnitudes."""
    params: Mapping[str, object] = field(default_factory=dict)
    """Free-form parameters for ``draw`` (e.g. ``{"large": True}`` or ``{"condition": 1e6}``);
    a draw function reads them from its ``case`` argument."""
    parts: tuple[str, ...] | None = None
    """For functions returning a tuple: the parts (names in :attr:`Target.returns`) this case
    judges; ``None`` judges all parts."""


def typical(points: float, sizes: tuple[Size, ...] = (), **params: object) -> Case:
    """The ``typical`` case: ordinary sizes and magnitudes (also the baseline other cases are
    diagnosed against when it is a question's first case)."""
    return Case(name="typical", points=points, sizes=tuple(sizes), params=params)


def edge(points: float, sizes: tuple[Size, ...] = (), **params: object) -> Case:
    """The ``edge`` case: a dimension of 1; failing it alone earns ``edge_case``."""
    return Case(
        name="edge", points=points, sizes=tuple(sizes), diagnosis="edge_case", params=params
    )


def large(points: float, sizes: tuple[Size, ...] = (), **params: object) -> Case:
    """The ``large`` case: magnitudes around 1000 (``params["large"]`` is True); failing it alone
    earns ``not_stable``."""
    return Case(
        name="large",
        points=points,
        sizes=tuple(sizes),
        diagnosis="not_stable",
        params={"large": True, **params},
    )


@dataclass(frozen=True, kw_only=True)
class Misconception:
    """A pack-specific wrong answer, recognised by value: an answer within tolerance of it gets
    ``tag`` (and the question's hint for that tag in the feedback).

    The generic misconceptions (``transposed``, ``sign_flipped``, ``scaled``, ``diag_only``,
    ``missing_diag``, ``wrong_shape``, ``not_finite``, and ``edge_case``/``not_stable`` through the
    cases) are derived by the kit and need no declaration.
    """

    tag: str
    """The tag written to the results (a new word, or a generic tag to recognise it earlier)."""
    answer: Callable[..., object]
    """The wrong answer from the instance's inputs (keywords), or ``None`` where it does not
    apply (e.g. it would divide by zero). For a function returning a tuple: a mapping from part
    name to the wrong part (parts left out are not compared)."""
    hint: str = ""
    """What the student should reconsider, in their terms; required for a tag that is not one of
    the generic tags."""


@dataclass(frozen=True, kw_only=True)
class Instance:
    """One random problem, built by the kit from a target's declaration (custom judges get it)."""

    args: tuple
    """Positional arguments for the student's function (copied before each call)."""
    expected: Reference
    """The reference answer: an array, or for a tuple-valued function a tuple of arrays."""
    what: str
    """The inputs in words, for messages (shapes, not values)."""
    alternatives: Mapping[str, object] = field(default_factory=dict)
    """Known wrong answers by tag (per part for tuple-valued functions: tag -> {part: array})."""
    inputs: Mapping[str, object] = field(default_factory=dict)
    """The named inputs the instance was drawn from."""


Judge = Callable[[object, Instance, str], Outcome]
"""A custom comparison: ``judge(answer, instance, label) -> Outcome`` (pure; never raises for
anything the answer is). ``label`` names the call in messages, e.g. "`f` on X of shape (3, 2)"."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One function the student writes, and how the kit draws its inputs and judges its answers.

    Declare it as a :class:`Derivative` (the reference is derived from a forward map) or a
    :class:`Computed` (the reference is computed by a given function); this base class holds
    what both share.
    """

    name: str
    """The function's name in the notebook (``def <name>(...)``)."""
    params: tuple[str, ...]
    """The student's parameter names, in order (the signature shown in the sheet)."""
    draw: Callable[..., Inputs] | None = None
    """One instance's inputs: called with any of ``rng`` (a seeded ``np.random.Generator``),
    ``size`` (one entry of the case's ``sizes``), ``case`` (the :class:`Case`) and ``index``
    (the instance's position in the case), by name. Returns a dict of named inputs."""
    draw_case: Callable[..., list[Inputs]] | None = None
    """Instead of ``draw``: all inputs of a case at once, called with ``rng`` and ``case`` (for
    instances that depend on each other, or to keep an existing random sequence)."""
    args: Callable[..., tuple] | None = None
    """The student's arguments from the inputs (keywords); default: the inputs named in
    ``params``, in order. A callable argument must be one of the pack's ``givens``."""
    describe: Callable[..., str] | None = None
    """The inputs in words for messages; default: "W of shape (3, 5), x of shape (5,)" over the
    array arguments."""
    shape_hint: str = ""
    """One sentence explaining the expected shape in the students' terms, appended to a
    ``wrong_shape`` message."""
    returns: tuple[str, ...] | None = None
    """For a function returning a tuple: the names of its parts, in order (e.g. ``("dX", "dW",
    "db")``); ``None`` for a function returning one array."""
    tolerance: Tolerance = DEFAULT_TOLERANCE
    """The explicit tolerance, scaled by the reference (printed in messages)."""
    misconceptions: tuple[Misconception, ...] = ()
    """Pack-specific wrong answers recognised by value (checked before the generic ones)."""
    judge: Judge | None = None
    """A custom comparison replacing the kit's ``compare`` (e.g. an optimality residual)."""

    def _check(self, where: str) -> None:
        if not _IDENTIFIER.match(self.name):
            raise _fail(where, f"function name {self.name!r} is not a Python identifier")
        for p in self.params:
            if not _IDENTIFIER.match(p):
                raise _fail(where, f"parameter {p!r} of {self.name} is not a Python identifier")
        if (self.draw is None) == (self.draw_case is None):
            raise _fail(where, f"{self.name} needs exactly one of draw= or draw_case=")
        if self.returns is not None and len(set(self.returns)) != len(self.returns):
            raise _fail(where, f"{self.name}: duplicate part names in returns={self.returns}")


@dataclass(frozen=True, kw_only=True)
class Derivative(Target):
    """A function whose answer is a derivative of a forward map, declared by that map.

    The kit derives the reference (central finite differences in float64, exact sympy for small
    instances when ``sympy`` is given), the expected shape and the generic misconceptions.
    Shapes follow the sheet's convention: the derivative of an output of shape ``S`` with respect
    to an input of shape ``T`` has shape ``S + T`` (a Jacobian of a vector map is
    ``(len(out), len(in))``, the gradient of a scalar has the shape of what is differentiated).
    """

    forward: Callable[..., object]
    """The forward map in NumPy, from the inputs (keywords) to an array or a scalar."""
    wrt: str | tuple[str, ...]
    """The input differentiated; a tuple for a function returning one derivative per input, in
    the order of :attr:`Target.returns`."""
    sympy: Callable[..., object] | None = None
    """The same map in sympy: array inputs arrive as sympy ``Matrix`` objects of symbols (a
    vector as a column), other inputs unchanged; returns a Matrix or a scalar expression. Used
    for the exact reference on small instances and for the tests' proofs."""
    part: Literal["full", "diagonal"] = "full"
    """``"diagonal"``: the answer is the diagonal of a square Jacobian (e.g. dyhat_i/dz_i, or the
    elementwise derivative f'(x) of an elementwise map)."""
    upstream: str | None = None
    """The input holding dL/d(output) of the same shape as the forward output: the answer is then
    the gradient of ``sum(upstream * forward(...))``, a vector-Jacobian product (backprop)."""
    exact_max_size: int = 4
    """Use the exact sympy reference when every array input has at most this many entries."""
    exact_if: Callable[..., bool] | None = None
    """A further condition on the inputs for the exact reference (e.g. no logits beyond 50,
    where ``exp`` in sympy's compiled form would overflow)."""
    step: float = 1e-5
    """The finite-difference step (absolute; the maps of a sheet have curvature of order one)."""

    def wrt_names(self) -> tuple[str, ...]:
        """The differentiated inputs as a tuple."""
        return (self.wrt,) if isinstance(self.wrt, str) else tuple(self.wrt)

    def _check(self, where: str) -> None:
        super()._check(where)
        names = self.wrt_names()
        if self.returns is None and len(names) != 1:
            raise _fail(where, f"{self.name}: several wrt={names} need returns=(part names)")
        if self.returns is not None and len(self.returns) != len(names):
            raise _fail(
                where, f"{self.name}: returns={self.returns} and wrt={names} differ in length"
            )
        if self.part == "diagonal" and self.upstream is not None:
            raise _fail(where, f"{self.name}: part='diagonal' and upstream= exclude each other")


@dataclass(frozen=True, kw_only=True)
class Computed(Target):
    """A function whose reference answer is computed by a given function (not a derivative),
    usually judged by a custom ``judge`` (e.g. a minimiser by its optimality residual)."""

    solve: Callable[..., object]
    """The reference answer from the inputs (keywords): an array, or a tuple of arrays."""


@dataclass(frozen=True, kw_only=True)
class Advice:
    """A remark on an answer that never changes its score (e.g. "prefer solve to inv")."""

    pattern: str
    """A regular expression searched in the source of the question's answer cells."""
    note: str
    """The note appended to the question's feedback when the pattern is found."""


@dataclass(frozen=True, kw_only=True)
class Question:
    """One graded question: its functions, its cases and its points."""

    id: str
    """Question id as in the notebook, the results and the gradebook (e.g. ``"q1"``)."""
    sheet: str
    """The exercise-sheet label (e.g. ``"2-1 a"``)."""
    points: float
    """Points of the autograded part; the cases' points add up to it."""
    functions: tuple[Target, ...]
    """The student's functions for this question, in the order the test cells pass them."""
    cases: tuple[Case, ...]
    """The hidden cases; the first is the baseline other cases are diagnosed against."""
    derivation: bool = False
    """Does the sheet give this question a "Your derivation" Markdown answer cell? The master
    must hold it (``sync-tests`` writes it, ``build`` checks it; see
    :mod:`autograder.pack.master`)."""
    derivation_points: float = 0.0
    """Manual points for the "Your derivation" cell, marked by a TA in the review app (not
    part of ``points``, never autograded); needs ``derivation=True``. 0 hands the cell out
    without points."""
    advice: tuple[Advice, ...] = ()
    """Remarks on correct answers; never scored."""

    @property
    def function_names(self) -> tuple[str, ...]:
        """The names of the question's functions, in order."""
        return tuple(t.name for t in self.functions)

    @property
    def possible(self) -> float:
        """What the question is worth: the autograded ``points`` plus the manual
        ``derivation_points``."""
        return self.points + self.derivation_points

    @property
    def case_points(self) -> dict[str, float]:
        """Case name -> points, in declaration order."""
        return {c.name: c.points for c in self.cases}

    def case(self, name: str) -> Case:
        """The case of that name (``KeyError`` if there is none)."""
        for c in self.cases:
            if c.name == name:
                return c
        raise KeyError(f"{self.id} has no case {name!r}")

    def _check(self, where: str) -> None:
        where = f"{where}, question {self.id}"
        if not _IDENTIFIER.match(self.id):
            raise _fail(where, f"question id {self.id!r} is not an identifier")
        if not self.functions:
            raise _fail(where, "declares no function")
        if not self.cases:
            raise _fail(where, "declares no case")
        names = [c.name for c in self.cases]
        if len(set(names)) != len(names) or not all(map(_IDENTIFIER.match, names)):
            raise _fail(where, f"case names must be distinct identifiers, got {names}")
        if any(not (c.points > 0) for c in self.cases):
            raise _fail(where, f"every case needs points > 0, got {self.case_points}")
        total = math.fsum(c.points for c in self.cases)
        if not math.isclose(total, self.points, rel_tol=0, abs_tol=1e-9):
            raise _fail(
                where,
                f"the cases' points {self.case_points} add up to {total:g}, not "
                f"the question's {self.points:g}",
            )
        if not (self.derivation_points >= 0 and math.isfinite(self.derivation_points)):
            raise _fail(where, f"derivation_points {self.derivation_points} is not a number >= 0")
        if self.derivation_points > 0 and not self.derivation:
            raise _fail(
                where,
                f"derivation_points={self.derivation_points:g} needs derivation=True (the "
                '"Your derivation" cell the points are for)',
            )
        for target in self.functions:
            target._check(where)
            for case in self.cases:
                if case.parts is not None and not set(case.parts) <= set(target.returns or ()):
                    raise _fail(
                        where,
                        f"case {case.name} judges parts {case.parts}, but {target.name} "
                        f"returns {target.returns}",
                    )


@dataclass(frozen=True, kw_only=True)
class Pack:
    """An assignment: its questions, the values the judge may hand to student code, its tags.

    The spec module of ``assignments/<name>/`` defines ``PACK = Pack(...)``; the kit loads it
    with :func:`autograder.pack.load`.
    """

    name: str
    """The pack's name: the folder ``assignments/<name>/``, the master ``<name>.ipynb`` and the
    notebook name Otter grades; lower case, digits and ``_``."""
    title: str
    """The sheet's title as students know it (feedback pages, the LMS column by default)."""
    questions: tuple[Question, ...]
    """The graded questions, in sheet order (the gradebook's column order)."""
    givens: Mapping[str, Callable] = field(default_factory=dict)
    """What the judge may hand to student code besides arrays, by name (e.g. the f' passed to
    ``jacobian_elementwise(f_prime, x)``). Define it as ``GIVENS`` in the pack's ``givens.py``
    (numpy only, no checks): the sandboxed evaluator loads that file and nothing else of the
    pack. An argument not in this registry is never sent: the submission becomes an ``error``
    row, not the student's fault."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Hints of pack-specific tags used by custom judges (misconceptions carry their own)."""
    salt: str = ""
    """Seed salt of the instances; default the pack's name. Changing it changes every instance."""
    folder: Path | None = None
    """The pack's folder; set by the loader (``None`` for a pack built in Python)."""

    def __post_init__(self) -> None:
        where = f"pack {self.name!r}"
        if not _PACK_NAME.match(self.name or ""):
            raise _fail(where, "the name must be lower case letters, digits and _")
        if not self.questions:
            raise _fail(where, "declares no question")
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise _fail(where, f"duplicate question ids in {ids}")
        functions = [f for q in self.questions for f in q.function_names]
        if len(set(functions)) != len(functions):
            raise _fail(where, f"a function name is used twice: {functions}")
        for question in self.questions:
            question._check(where)
        for name, given in self.givens.items():
            if not isinstance(name, str) or not _IDENTIFIER.match(name) or not callable(given):
                raise _fail(where, f"givens[{name!r}] must be a callable under an identifier")
        self.vocabulary  # noqa: B018 - validates that every tag has a hint

    # --- derived, read by the machinery ---------------------------------------------------

    @property
    def question_ids(self) -> tuple[str, ...]:
        """The question ids in sheet order (the gradebook's question columns)."""
        return tuple(q.id for q in self.questions)

    @property
    def by_id(self) -> dict[str, Question]:
        """Question id -> question."""
        return {q.id: q for q in self.questions}

    def question(self, question_id: str) -> Question:
        """The question with that id; ``KeyError`` naming the valid ids otherwise."""
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(f"{self.name} has no question {question_id!r}; it has {self.question_ids}")

    @property
    def total_points(self) -> float:
        """What the whole assignment is worth: autograded plus manual derivation points (equal to
        :attr:`autograded_points` when no question has ``derivation_points``)."""
        return math.fsum(q.possible for q in self.questions)

    @property
    def autograded_points(self) -> float:
        """The autograded points of the whole assignment (what Otter and Gradescope score)."""
        return math.fsum(q.points for q in self.questions)

    @property
    def manual_points(self) -> float:
        """The manual derivation points of the whole assignment, marked by TAs."""
        return math.fsum(q.derivation_points for q in self.questions)

    @property
    def gradebook_columns(self) -> tuple[str, ...]:
        """The fixed leading columns of ``gradebook.csv``."""
        return ("student", *self.question_ids, "total", "percent", "status")

    @property
    def cases(self) -> dict[str, dict[str, float]]:
        """Question id -> case name -> points."""
        return {q.id: q.case_points for q in self.questions}

    @property
    def seed_salt(self) -> str:
        """The salt seeding the instances."""
        return self.salt or self.name

    @property
    def vocabulary(self) -> dict[str, str]:
        """Every tag this pack's results may carry -> its hint, in a fixed order: the structural
        and generic value tags, the pack's own, the case diagnoses, then ``wrong_value``."""
        own: dict[str, str] = {}
        for tag, text in [
            *(
                (m.tag, m.hint)
                for q in self.questions
                for t in q.functions
                for m in t.misconceptions
            ),
            *self.tags.items(),
        ]:
            generic = {**GENERIC_TAGS, **CASE_TAGS, **FALLBACK_TAGS}
            if tag in generic:
                if text and text != generic[tag]:
                    raise _fail(f"pack {self.name!r}", f"tag {tag!r} is generic; drop its hint")
                continue
            if not text:
                raise _fail(f"pack {self.name!r}", f"tag {tag!r} needs a hint for students")
            if own.get(tag, text) != text:
                raise _fail(f"pack {self.name!r}", f"tag {tag!r} has two different hints")
            own[tag] = text
        return {**GENERIC_TAGS, **own, **CASE_TAGS, **FALLBACK_TAGS}


def array_arguments(names: tuple[str, ...], args: tuple) -> str:
    """The default description of an instance: "W of shape (3, 5), x of shape (5,)"."""
    return ", ".join(
        f"{name} of shape {np.shape(arg)}"
        for name, arg in zip(names, args)
        if isinstance(arg, np.ndarray)
    )
