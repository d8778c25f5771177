"""The spec API (``autograder.pack.spec``) and the derivation of checks from it (``derive``).

A pack that contradicts itself must fail when it is constructed, with a ``SpecError`` naming the
bad value; the kit derives references, shapes and generic mistakes from the declarations.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import instances as inst
from autograder.checks import runner
from autograder.checks.tags import GENERIC_TAGS
from autograder.errors import KitError, SpecError
from autograder.pack import (
    Case,
    Computed,
    Derivative,
    Misconception,
    Pack,
    Question,
    derive,
    edge,
    large,
    load,
    typical,
)

MP = load("math_primer")


def linear(**overrides) -> Derivative:
    """A Jacobian question's function: z = Wx."""
    fields = {
        "name": "jac",
        "params": ("W", "x"),
        "draw": lambda rng, size: {"W": inst.matrix(rng, *size), "x": inst.vector(rng, size[1])},
        "forward": lambda W, x: W @ x,
        "sympy": lambda W, x: W * x,
        "wrt": "x",
    }
    return Derivative(**{**fields, **overrides})


def pack_with(*questions: Question, **overrides) -> Pack:
    return Pack(**{"name": "demo_pack", "title": "Demo", "questions": questions, **overrides})


def question(**overrides) -> Question:
    fields = {
        "id": "q1",
        "sheet": "1",
        "points": 1,
        "cases": (typical(0.75, ((3, 2), (2, 2))), edge(0.25, ((1, 3),))),
        "functions": (linear(),),
    }
    return Question(**{**fields, **overrides})


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: pack_with(question(points=2)), r"add up to 1, not the question's 2"),
        (lambda: pack_with(question(), question()), "duplicate question ids"),
        (
            lambda: pack_with(question(cases=(typical(1, ((2, 2),)), typical(0.0, ((2, 2),))))),
            "distinct identifiers",
        ),
        (lambda: pack_with(question(functions=(linear(name="not a name"),))), "not a Python"),
        (lambda: pack_with(question(functions=(linear(draw=None),))), "exactly one of draw="),
        (lambda: pack_with(question(functions=(linear(wrt=("W", "x")),))), "need returns="),
        (lambda: pack_with(question(), name="Bad-Name"), "lower case"),
        (
            lambda: pack_with(
                question(
                    functions=(
                        linear(misconceptions=(Misconception(tag="new_tag", answer=lambda W: W),)),
                    )
                )
            ),
            "'new_tag' needs a hint",
        ),
        (
            lambda: pack_with(
                question(cases=(Case(name="dW", points=1, sizes=((2, 2),), parts=("dW",)),))
            ),
            "judges parts",
        ),
    ],
    ids=[
        "points",
        "duplicate-ids",
        "duplicate-cases",
        "bad-name",
        "no-draw",
        "returns",
        "pack-name",
        "hint",
        "parts",
    ],
)
def test_inconsistent_specs_are_spec_errors(make, message):
    """Is each inconsistency a SpecError (a KitError, so the CLI prints one line) naming it?"""
    with pytest.raises(SpecError, match=message) as raised:
        make()
    assert isinstance(raised.value, KitError)


def test_vocabulary_orders_generic_pack_and_case_tags():
    """Does Exercise 2's vocabulary keep the historical order: generic, its own, case, fallback?"""
    vocabulary = list(MP.vocabulary)
    assert vocabulary[: len(GENERIC_TAGS)] == list(GENERIC_TAGS)
    assert vocabulary[len(GENERIC_TAGS) :] == ["dL_dyhat", "not_stable", "edge_case", "wrong_value"]


def test_derived_properties_of_exercise_2():
    """Are Exercise 2's questions, points, columns and cases what its contract always was?"""
    assert MP.question_ids == ("q1a", "q1b", "q1c", "q1d", "q2a", "q2b", "q3")
    assert MP.total_points == 12
    assert MP.gradebook_columns == ("student", *MP.question_ids, "total", "percent", "status")
    assert MP.cases["q3"] == {"typical": 2.0, "ill_conditioned": 0.5, "edge": 0.5}
    assert [q.function_names for q in MP.questions][4] == (
        "softmax_diag_derivative",
        "softmax_jacobian",
    )


def test_case_helpers_carry_their_diagnoses():
    """Do edge() and large() carry `edge_case` and `not_stable`, and large() the large flag?"""
    assert edge(1, ((1,),)).diagnosis == "edge_case"
    assert large(1, (4,)).diagnosis == "not_stable" and large(1, (4,)).params["large"] is True
    assert typical(1).diagnosis is None


# --- derivation -------------------------------------------------------------------------------


def test_spec_callables_get_only_the_inputs_they_name():
    """Is a spec callable called with the inputs its signature names, and a missing one an
    error naming it?"""
    assert derive.call(lambda W, x: W + x, {"W": 1, "x": 2, "c": 3}) == 3
    assert derive.call(lambda **kw: sorted(kw), {"a": 1, "b": 2}) == ["a", "b"]
    with pytest.raises(SpecError, match=r"\['y'\]"):
        derive.call(lambda x, y: x, {"x": 1})


@pytest.mark.parametrize(("n", "d"), [(1, 1), (3, 2), (4, 4)])
def test_reference_of_a_linear_map_is_W_with_and_without_sympy(n, d):
    """Is the derived Jacobian of z = Wx equal to W, exactly (sympy) and by finite differences,
    in the sheet's shape (n, d)?"""
    rng = np.random.default_rng(n * 10 + d)
    inputs = {"W": inst.matrix(rng, n, d), "x": inst.vector(rng, d)}
    exact = derive.derivative(linear(exact_max_size=100), inputs, "x")
    by_fd = derive.derivative(linear(sympy=None), inputs, "x")
    assert exact.shape == by_fd.shape == (n, d)
    assert np.allclose(exact, inputs["W"], rtol=0, atol=1e-12)
    assert np.allclose(by_fd, inputs["W"], rtol=0, atol=1e-9)


def test_upstream_gives_the_vector_jacobian_product():
    """With upstream=, is the answer the gradient of sum(dY * forward), i.e. (dY W^T, X^T dY)?"""
    target = Derivative(
        name="back",
        params=("X", "W", "dY"),
        draw=lambda rng: {},
        forward=lambda X, W: X @ W,
        sympy=lambda X, W: X * W,
        upstream="dY",
        wrt=("X", "W"),
        returns=("dX", "dW"),
    )
    rng = np.random.default_rng(1)
    X, W, dY = inst.matrix(rng, 2, 3), inst.matrix(rng, 3, 2), inst.matrix(rng, 2, 2)
    dX, dW = derive.reference(target, {"X": X, "W": W, "dY": dY})
    assert np.allclose(dX, dY @ W.T) and np.allclose(dW, X.T @ dY)


def test_diagonal_part_is_the_diagonal_of_the_jacobian():
    """Does part='diagonal' give the vector of d yhat_i / d z_i of the softmax?"""
    target = MP.question("q2a").functions[0]
    z = np.array([0.3, -1.0, 2.0])
    s = np.exp(z) / np.exp(z).sum()
    assert np.allclose(derive.reference(target, {"z": z}), s * (1 - s), atol=1e-10)


def test_softmax_jacobian_keeping_only_the_diagonal_is_diag_only():
    """Is a softmax Jacobian that keeps only its diagonal tagged `diag_only` (not
    `wrong_value`) on every instance and every student key, even when another generic check
    would match first?"""

    def sm(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    def diag(z):
        return sm(z) * (1 - sm(z))

    def only(z):
        return np.diag(sm(z) * (1 - sm(z)))

    for key in map(str, range(40)):
        for case in ("typical", "large"):
            result = runner.run_case("q2a", case, diag, only, pack=MP, key=key, call_limit=None)
            assert result.tags == ("diag_only",), (key, case, result.tags)
    # N = 2: diag(J) is also a constant multiple of J's sign pattern; still diag_only
    z = np.array([0.5, -0.5])
    target = MP.question("q2a").functions[1]
    J = derive.reference(target, {"z": z})
    alternatives = derive.alternatives(target, {"z": z}, J)
    assert set(alternatives) == {"diag_only"}


def test_elementwise_jacobian_vector_is_missing_diag():
    """For a diagonal Jacobian (an elementwise map), is its diagonal as a vector the derived
    `missing_diag` mistake, and no `diag_only`?"""
    J = np.diag([1.0, 2.0, 3.0])
    found = derive.derived_alternatives(J, bound=1e-6)
    assert set(found) == {"missing_diag"} and np.array_equal(found["missing_diag"], [1, 2, 3])


def test_computed_target_uses_its_solve():
    """Is a Computed target's reference the value of its solve function?"""
    target = Computed(name="f", params=("x",), draw=lambda rng: {}, solve=lambda x: 2 * x)
    assert np.array_equal(derive.reference(target, {"x": np.ones(2)}), [2.0, 2.0])


def test_a_case_without_instances_is_a_spec_error():
    """Is a case that draws nothing an author error, not a silently passing case?"""
    pack = pack_with(question(cases=(Case(name="typical", points=1),)))
    with pytest.raises(SpecError, match="draws no instance"):
        runner.run_case("q1", "typical", lambda W, x: W, pack=pack, key="k")
