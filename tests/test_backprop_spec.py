"""Tests of the backprop pack's own declarations (``assignments/backprop/spec.py``): its instance
generators keep their promises, its two small judges, and its sample answers checked in-process
against the kit's runner (the engines run them in the generic pack tests)."""

from __future__ import annotations

import inspect
import warnings

import nbformat
import numpy as np
import pytest

from autograder.checks.runner import run_case
from autograder.pack import derive, load
from solutions.backprop import reference as ref
from solutions.backprop.samples import CHAINED_Q4, CORRECT, EQUIVALENT, MISTAKES

PACK = load("backprop")
KEYS = ("", "alice", "bob@example.org", "12345")
"""Student keys: instances are drawn per student, so promises are checked for several."""


def spec_module():
    """The loaded spec module of the pack (its samplers and judges)."""
    return inspect.getmodule(PACK.question("q4").functions[0].draw)


def instances(question: str, case: str, key: str):
    """The instances of one case of the question's (only) function for a student key."""
    from autograder.checks import instances as inst

    q = PACK.question(question)
    rng = inst.rng_for(question, case, key=key, salt=PACK.seed_salt)
    return derive.instances(q.functions[0], rng, q.case(case))


def given_helpers() -> dict[str, object]:
    """A namespace holding what the notebook gives students: numpy, softmax and relu, run from
    the master notebook's own helper cell."""
    nb = nbformat.read(str(PACK.folder / "backprop.ipynb"), as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "def softmax(" in c.source]
    namespace: dict[str, object] = {"np": np}
    exec(cell.source, namespace)  # noqa: S102 - the notebook's own helper cell
    return namespace


def grade(
    question: str, source: str, *, key: str = "carol", call_limit: float = 2.0
) -> tuple[float, list]:
    """Points and case results of one answer cell, with the other answers correct."""
    namespace = given_helpers()
    for other in CORRECT.values():
        exec(other, namespace)  # noqa: S102 - answers from the sample catalogue
    exec(source, namespace)  # noqa: S102 - answers from the sample catalogue
    spec = PACK.question(question)
    functions = [namespace.get(name) for name in spec.function_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the not_stable answers
        results = [
            run_case(question, c.name, *functions, pack=PACK, key=key, call_limit=call_limit)
            for c in spec.cases
        ]
    points = sum(c.points for c, r in zip(spec.cases, results) if r.passed)
    return points, results


# --- the given helpers and the reference --------------------------------------------------------


def test_given_softmax_is_rowwise_and_stable() -> None:
    """Does the notebook's softmax normalise each row and survive logits of size 1000?"""
    softmax = given_helpers()["softmax"]
    Z = np.array([[1000.0, 999.0, -5.0], [-1000.0, -1001.0, -1002.0]])
    with np.errstate(over="raise", invalid="raise"):
        P = softmax(Z)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(P, ref.softmax(Z - Z.max(axis=1, keepdims=True)), rtol=1e-15)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("question", PACK.question_ids)
def test_reference_passes_every_case(question: str, key: str) -> None:
    """Does the reference solution (solutions/backprop) pass every case for several students,
    i.e. does the oracle derived from the forward maps agree with the closed forms?"""
    fn = getattr(ref, PACK.question(question).function_names[0])
    for case in PACK.question(question).cases:
        result = run_case(question, case.name, fn, pack=PACK, key=key)
        assert result.passed, result.report()


# --- the generators keep their promises -----------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_sigmoid_large_case_overflows_the_textbook_formula(key: str) -> None:
    """Does every large instance of q1a hold inputs beyond 710 of both signs next to moderate
    ones, so that exp(-x) and exp(x) overflow while the moderate entries still count?"""
    for instance in instances("q1a", "large", key):
        (x,) = instance.args
        assert np.any(x < -710) and np.any(x > 710)
        assert np.any(np.abs(x) < 20)
        assert np.all(np.isfinite(instance.expected))


@pytest.mark.parametrize("key", KEYS)
def test_relu_inputs_are_away_from_zero_with_both_signs(key: str) -> None:
    """Are q1c's inputs never near 0, with both signs in every typical instance and across the
    two edge instances?"""
    typical = [i.args[0] for i in instances("q1c", "typical", key)]
    edge = [i.args[0] for i in instances("q1c", "edge", key)]
    for x in typical + edge:
        assert np.min(np.abs(x)) >= 0.1
    assert all(np.any(x > 0) and np.any(x < 0) for x in typical)
    assert [float(np.sign(x[0])) for x in edge] == [1.0, -1.0]


@pytest.mark.parametrize("key", KEYS)
def test_batches_have_probability_targets_and_large_logits(key: str) -> None:
    """Do q3's targets have rows >= 0 summing to 1, and does its large case hold logits of
    magnitude ~1000 of both signs?"""
    for case in ("typical", "large", "edge"):
        for instance in instances("q3", case, key):
            Z, Y = instance.args
            assert Z.shape == Y.shape and np.all(Y >= 0)
            np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-12)
            if case == "large":
                assert np.any(Z > 900) and np.any(Z < -900)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("case", ("dW1_typical", "dW1_edge"))
def test_networks_stay_away_from_the_relu_kink(key: str, case: str) -> None:
    """Is every pre-activation of q4 at least KINK_MARGIN from 0, with active and inactive units
    (a single unit active), so the mask matters and finite differences see a smooth map?"""
    margin = spec_module().KINK_MARGIN
    for instance in instances("q4", case, key):
        X, _, W1, b1, _, _ = instance.args
        A = X @ W1 + b1
        assert np.min(np.abs(A)) >= margin
        if A.size == 1:
            assert A.item() > 0
        else:
            assert np.any(A > 0) and np.any(A < 0)


def test_edge_cases_cover_every_size_of_one() -> None:
    """Do the edge cases include B = 1, d = 1, k = 1, h = 1 and N = 1?"""
    sizes = {q: PACK.question(q).cases[-1].sizes for q in ("q2", "q3", "q4")}
    assert any(s[0] == 1 for s in sizes["q2"]) and any(s[1] == 1 for s in sizes["q2"])
    assert any(s[2] == 1 for s in sizes["q2"])
    assert any(s[0] == 1 for s in sizes["q3"]) and any(s[1] == 1 for s in sizes["q3"])
    assert {1} <= {s[2] for s in sizes["q4"]} and {1} <= {s[3] for s in sizes["q4"]}
    assert PACK.question("q1a").case("edge").sizes == (1,)


# --- the pack's judges ------------------------------------------------------------------------


def test_relu_mask_as_booleans_is_accepted_but_a_wrong_mask_is_not() -> None:
    """Does relu_grad returning the boolean array x > 0 earn full points, and x < 0 nothing?"""
    points, _ = grade("q1c", "def relu_grad(x):\n    return x > 0\n")
    assert points == PACK.question("q1c").points
    points, results = grade("q1c", "def relu_grad(x):\n    return x < 0\n")
    assert points == 0
    assert all("wrong_value" in r.tags for r in results)


def test_sigmoid_overflow_is_explained_in_sigmoid_terms() -> None:
    """Does the textbook sigmoid' lose only the large case, tagged not_stable, with a message
    that explains the overflow of exp for the sigmoid (not only the softmax hint)?"""
    source = next(s for q, t, s in MISTAKES if (q, t) == ("q1a", "not_stable"))
    points, results = grade("q1a", source)
    (failed,) = [r for r in results if not r.passed]
    assert failed.case == "large" and points == 0.75
    assert failed.tags[0] == "not_stable"
    assert "exp(-|x|)" in failed.message and "709" in failed.message


def test_cross_entropy_judge_knows_dL_dyhat_with_and_without_the_mean() -> None:
    """Is -Y / Y-hat tagged dL_dyhat whether or not it is divided by B, and a transposed answer
    still a shape error?"""
    for source, extra in (
        ("def softmax_ce_batch_grad(Z, Y):\n    return -Y / softmax(Z) / len(Z)\n", ()),
        ("def softmax_ce_batch_grad(Z, Y):\n    return -Y / softmax(Z)\n", ("scaled",)),
    ):
        _, results = grade("q3", source)
        typical = results[0]
        assert not typical.passed and typical.tags == ("dL_dyhat", *extra)
        assert "chain rule through the softmax" in typical.text()
    _, results = grade("q3", "def softmax_ce_batch_grad(Z, Y):\n    return (softmax(Z) - Y).T\n")
    assert "wrong_shape" in results[0].tags


# --- the sample answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "source"), [(q, s) for q, sources in EQUIVALENT.items() for s in sources]
)
def test_equivalent_answers_earn_full_points(question: str, source: str) -> None:
    """Does every other correct form of an answer earn the question's full points?"""
    points, results = grade(question, source)
    assert points == PACK.question(question).points, [r.report() for r in results if not r.passed]


def test_mlp_backward_may_call_the_earlier_answers() -> None:
    """Does an mlp_backward built from the student's own relu_grad, linear_backward and
    softmax_ce_batch_grad (as the sheet suggests) earn full points when those are right, and
    lose its points with the same tag when linear_backward's dW is transposed?"""
    points, _ = grade("q4", CHAINED_Q4)
    assert points == PACK.question("q4").points
    transposed = next(s for q, t, s in MISTAKES if (q, t) == ("q2", "transposed"))
    points, results = grade("q4", transposed + CHAINED_Q4)
    assert points < PACK.question("q4").points
    assert "transposed" in {t for r in results for t in r.tags}


@pytest.mark.parametrize(("question", "tag", "source"), MISTAKES)
def test_mistakes_earn_their_tag_and_lose_points(question: str, tag: str, source: str) -> None:
    """Does every typical mistake lose points on its question and carry its expected tag?"""
    points, results = grade(question, source, call_limit=0.3 if tag == "timeout" else 2.0)
    tags = {t for r in results for t in r.tags}
    assert points < PACK.question(question).points
    assert tag in tags, [r.report() for r in results if not r.passed]


def test_missing_relu_mask_costs_only_the_hidden_layer() -> None:
    """Does an answer without the ReLU mask keep dW2 and db2 and lose dW1 and db1 entirely?"""
    source = next(s for q, t, s in MISTAKES if t == "missing_relu_mask")
    points, results = grade("q4", source)
    lost = {r.case.split("_")[0] for r in results if not r.passed}
    assert lost == {"dW1", "db1"} and points == 2.0
    assert all(r.tags == ("missing_relu_mask",) for r in results if not r.passed)
