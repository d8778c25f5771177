"""Tests for the comparison engine ``autograder.checks.compare``.

Structure is judged before values, in a fixed order (None / type -> shape -> finite -> close); a
wrong value is then diagnosed (transposed, sign_flipped, scaled, diag_only, a known alternative or
plain wrong_value). The tolerance scales with the reference, never with the answer, and is printed
in the message. Hypothesis properties pin down the three promises of the engine: the reference
plus tiny relative noise passes, a transpose fails as ``transposed``, a sign flip fails.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.checks.compare import Outcome, Tolerance, compare

TOL = Tolerance(rtol=1e-6)
"""The tolerance used throughout (explicit, like the kit's JACOBIAN_TOL)."""
LABEL = "f(W, x)"

RECT = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.5]])
"""A non-square reference, shape (2, 3)."""
SQUARE = np.array([[2.0, -1.0, 0.5], [0.25, 3.0, -2.0], [1.5, 0.75, -1.0]])
"""A square, clearly non-symmetric reference."""
SYMMETRIC = np.array([[2.0, 0.5, -1.0], [0.5, 3.0, 0.25], [-1.0, 0.25, 1.0]])
"""A square symmetric reference with nonzero off-diagonal entries."""
VECTOR = np.array([0.5, -1.25, 2.0, 1.0])


def as_matrix(a: np.ndarray) -> np.matrix:
    """An ``np.matrix`` (what some students return), without numpy's deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix(a)


def check(got: object, expected: np.ndarray, **kwargs: object) -> Outcome:
    return compare(got, expected, tol=TOL, label=LABEL, **kwargs)


def with_nan(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out.flat[0] = np.nan
    return out


# --- structure before values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("got", "expected", "tag"),
    [
        pytest.param(None, RECT, "wrong_type", id="None"),
        pytest.param("[[1, -2, 0.5], [3, 0.25, -1.5]]", RECT, "wrong_type", id="str"),
        pytest.param(b"1 2 3 4", VECTOR, "wrong_type", id="bytes"),
        pytest.param({"J": RECT}, RECT, "wrong_type", id="dict"),
        pytest.param({1.0, 2.0}, VECTOR, "wrong_type", id="set"),
        pytest.param(np.zeros, VECTOR, "wrong_type", id="function"),
        pytest.param(RECT + 0j, RECT, "wrong_type", id="complex-array"),
        pytest.param([1 + 2j, 0j, 1j, 2j], VECTOR, "wrong_type", id="complex-list"),
        pytest.param(RECT > 0, RECT, "wrong_type", id="bool-array"),
        pytest.param([[1, 2], [3]], RECT, "wrong_type", id="ragged-list"),
        pytest.param(np.array(["0.5", "-1.25", "2", "1"]), VECTOR, "wrong_type", id="text-array"),
        pytest.param(..., RECT, "missing", id="Ellipsis"),
        pytest.param(RECT.ravel(), RECT, "wrong_shape", id="flattened"),
        pytest.param(RECT[:1], RECT, "wrong_shape", id="one-row"),
        pytest.param(float(VECTOR[0]), VECTOR, "wrong_shape", id="scalar"),
        pytest.param(as_matrix(VECTOR), VECTOR, "wrong_shape", id="matrix-for-vector"),
        pytest.param(with_nan(RECT), RECT, "not_finite", id="nan"),
        pytest.param(RECT * np.inf, RECT, "not_finite", id="inf"),
    ],
)
def test_structural_failures(got: object, expected: np.ndarray, tag: str) -> None:
    """Is each structural problem reported with its own tag, and only that tag?"""
    outcome = check(got, expected)
    assert not outcome.passed
    assert outcome.tags[0] == tag
    if tag != "wrong_shape":
        assert outcome.tags == (tag,)
    assert outcome.message.startswith(LABEL)


@pytest.mark.parametrize(
    ("got", "expected"),
    [
        pytest.param(RECT.copy(), RECT, id="ndarray"),
        pytest.param(RECT.tolist(), RECT, id="list-of-lists"),
        pytest.param(VECTOR.tolist(), VECTOR, id="list-of-numbers"),
        pytest.param(tuple(VECTOR.tolist()), VECTOR, id="tuple"),
        pytest.param(as_matrix(SQUARE), SQUARE, id="np.matrix"),
        pytest.param(RECT.astype(np.float32), RECT, id="float32"),
        pytest.param(np.array([[1, -2], [3, 4]]), np.array([[1.0, -2.0], [3.0, 4.0]]), id="int"),
        pytest.param(np.array(RECT.tolist(), dtype=object), RECT, id="object-array"),
        pytest.param(RECT + 1e-3 * TOL.bound(RECT), RECT, id="close"),
    ],
)
def test_numeric_containers_are_accepted(got: object, expected: np.ndarray) -> None:
    """Does any real numeric container with the right shape and values pass?"""
    outcome = check(got, expected)
    assert outcome.passed, outcome.message
    assert outcome.tags == ()


def test_none_is_wrong_type_not_missing() -> None:
    """Is a function that forgot `return` (None) told to return an array?"""
    outcome = check(None, RECT)
    assert outcome.tags == ("wrong_type",)
    assert "None" in outcome.message


@pytest.mark.parametrize(
    ("got", "expected"),
    [(RECT.T, RECT), (VECTOR[:, None], VECTOR), (np.ones((2, 2, 2)), SQUARE), (SQUARE[0], SQUARE)],
)
def test_wrong_shape_message_names_both_shapes(got: np.ndarray, expected: np.ndarray) -> None:
    """Does a wrong-shape message say which shape was got and which was expected?"""
    outcome = check(got, expected, shape_hint="J has one row per output")
    assert not outcome.passed
    assert outcome.tags[0] == "wrong_shape"
    assert f"shape {got.shape}" in outcome.message
    assert f"expected shape {expected.shape}" in outcome.message
    assert "J has one row per output" in outcome.message


def test_shape_is_judged_before_finiteness() -> None:
    """Does a NaN answer of the wrong shape stop at wrong_shape (first structural failure)?"""
    outcome = check(np.full(VECTOR.size + 1, np.nan), VECTOR)
    assert outcome.tags == ("wrong_shape",)


def test_not_finite_counts_bad_entries() -> None:
    """Does the not_finite message count the NaN/inf entries?"""
    got = RECT.copy()
    got[0, 0], got[1, 2] = np.nan, -np.inf
    outcome = check(got, RECT)
    assert outcome.tags == ("not_finite",)
    assert f"2 NaN or inf value(s) of {RECT.size}" in outcome.message


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_an_infinite_reference_still_judges_finiteness_first(bad: float) -> None:
    """With a reference holding inf (an unbounded tolerance), is a NaN or inf answer still
    not_finite rather than passed (the quick check of a right answer needs a finite bound)?"""
    expected = np.array([1.0, 5.0, np.inf])
    outcome = check(np.array([1.0, bad, 2.0]), expected)
    assert outcome.tags == ("not_finite",)


def test_an_answer_within_a_finite_bound_passes_without_other_checks() -> None:
    """Does an answer within the bound of a finite reference pass, and one that is off by more
    than the bound with a NaN elsewhere still fail as not_finite?"""
    assert check(RECT * (1 + 1e-9), RECT).passed
    got = RECT + 1.0
    got[0, 0] = np.nan
    assert check(got, RECT).tags == ("not_finite",)


# --- diagnoses --------------------------------------------------------------------------------


def _one_entry_off(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out.flat[1] += 0.5
    return out


@pytest.mark.parametrize(
    ("got", "expected", "tags"),
    [
        pytest.param(SQUARE.T, SQUARE, ("transposed",), id="transposed-square"),
        pytest.param(RECT.T, RECT, ("wrong_shape", "transposed"), id="transposed-non-square"),
        pytest.param(-RECT, RECT, ("sign_flipped",), id="sign-matrix"),
        pytest.param(-VECTOR, VECTOR, ("sign_flipped",), id="sign-vector"),
        pytest.param(-SYMMETRIC, SYMMETRIC, ("sign_flipped",), id="sign-symmetric"),
        pytest.param(2 * RECT, RECT, ("scaled",), id="doubled"),
        pytest.param(0.5 * VECTOR, VECTOR, ("scaled",), id="halved"),
        pytest.param(-3 * SQUARE, SQUARE, ("scaled",), id="negative-factor"),
        pytest.param(np.diag(np.diag(SYMMETRIC)), SYMMETRIC, ("diag_only",), id="diag-only"),
        pytest.param(_one_entry_off(RECT), RECT, ("wrong_value",), id="one-entry"),
        pytest.param(np.zeros_like(SQUARE), SQUARE, ("wrong_value",), id="zeros"),
        pytest.param(SQUARE + 0.5, SQUARE, ("wrong_value",), id="shifted"),
        pytest.param(SYMMETRIC.T + 0.5, SYMMETRIC, ("wrong_value",), id="symmetric-not-transposed"),
    ],
)
def test_generic_diagnoses(got: np.ndarray, expected: np.ndarray, tags: tuple[str, ...]) -> None:
    """Does each typical value mistake get its diagnosis (and nothing else)?"""
    outcome = check(got, expected)
    assert not outcome.passed
    assert outcome.tags == tags


def test_transposed_symmetric_answer_passes() -> None:
    """Is the transpose of a symmetric reference simply correct (no false `transposed`)?"""
    assert check(SYMMETRIC.T, SYMMETRIC).passed


def test_alternative_with_other_shape() -> None:
    """Does the vector f'(x) for the Jacobian diag(f'(x)) get wrong_shape and missing_diag?"""
    fprime = np.array([0.5, -1.0, 2.0])
    outcome = check(fprime, np.diag(fprime), alternatives={"missing_diag": fprime})
    assert not outcome.passed
    assert outcome.tags == ("wrong_shape", "missing_diag")


def test_alternative_with_same_shape_overrides_generic_tags() -> None:
    """Does an answer matching a known alternative get that tag instead of a generic one?"""
    expected = np.array([0.25, -0.5, 0.25])
    wrong = np.array([-1.0, -3.0, 0.0])
    outcome = check(wrong, expected, alternatives={"dL_dyhat": wrong, "other": expected + 7})
    assert outcome.tags == ("dL_dyhat",)


def test_alternatives_do_not_affect_a_correct_answer() -> None:
    """Does a correct answer pass even when alternatives are given?"""
    outcome = check(VECTOR.copy(), VECTOR, alternatives={"missing_diag": np.diag(VECTOR)})
    assert outcome.passed


def test_value_message_reports_mismatches() -> None:
    """Does a value failure report the mismatch count and the largest difference's index?"""
    got = _one_entry_off(RECT)
    outcome = check(got, RECT)
    assert f"mismatched elements: 1 / {RECT.size}" in outcome.message
    idx = np.unravel_index(1, RECT.shape)
    assert f"at index {tuple(int(i) for i in idx)}" in outcome.message
    assert f"got {got[idx]:.6g}, expected {RECT[idx]:.6g}" in outcome.message


# --- tolerance: relative to the reference -----------------------------------------------------


def _formula_bound(tol: Tolerance, expected: np.ndarray) -> float:
    """The documented rule, computed independently: rtol * max(max|expected|, floor)."""
    return tol.rtol * max(float(np.max(np.abs(expected))), tol.floor)


@pytest.mark.parametrize(
    "tol", [Tolerance(rtol=1e-6), Tolerance(rtol=1e-3, floor=1e-12), Tolerance(rtol=0.1, floor=5.0)]
)
@pytest.mark.parametrize(
    "expected", [VECTOR, 1e4 * RECT, 1e-7 * SQUARE, np.zeros(3)], ids=["o1", "big", "tiny", "zero"]
)
def test_bound_follows_reference_scale(tol: Tolerance, expected: np.ndarray) -> None:
    """Is an error just inside the documented bound accepted and one just outside rejected?"""
    bound = _formula_bound(tol, expected)
    assert tol.bound(expected) == pytest.approx(bound, rel=1e-12)
    inside, outside = expected.copy(), expected.copy()
    inside.flat[-1] += 0.9 * bound
    outside.flat[-1] += 1.1 * bound
    assert compare(inside, expected, tol=tol, label=LABEL).passed
    assert not compare(outside, expected, tol=tol, label=LABEL).passed


def test_small_entries_are_judged_against_the_largest_entry() -> None:
    """Is the bound taken from max|expected| (not entrywise), so a tiny entry may be off a bit?"""
    expected = np.array([1000.0, 1e-6])
    got = expected + np.array([0.0, 0.5 * TOL.rtol * 1000.0])
    assert check(got, expected).passed


def test_huge_wrong_answer_does_not_widen_the_bound() -> None:
    """Does a huge wrong entry leave the tolerance printed and applied from the reference?"""
    got = VECTOR.copy()
    got[0] = 1e12
    got[1] += 10 * _formula_bound(TOL, VECTOR)
    outcome = check(got, VECTOR)
    assert not outcome.passed
    assert f"mismatched elements: 2 / {VECTOR.size}" in outcome.message
    assert outcome.message.endswith(TOL.describe(VECTOR))
    assert TOL.describe(got) not in outcome.message


def test_answer_scale_does_not_matter() -> None:
    """Is the same absolute error judged the same whatever the other entries of the answer?"""
    error = 2 * _formula_bound(TOL, VECTOR)
    small, large = VECTOR.copy(), VECTOR.copy()
    small[0] += error
    large[0] += error
    large[1:] *= 1e9
    assert not check(small, VECTOR).passed
    assert "mismatched elements: 1 /" in check(small, VECTOR).message
    assert not check(large, VECTOR).passed


@pytest.mark.parametrize("tol", [Tolerance(rtol=1e-6), Tolerance(rtol=2.5e-4, floor=1e-12)])
def test_describe_prints_the_numbers(tol: Tolerance) -> None:
    """Does the tolerance text show rtol, floor and the resulting absolute bound?"""
    text = tol.describe(RECT)
    assert f"{tol.rtol:g}" in text
    assert f"{tol.floor:g}" in text
    assert text.endswith(f"= {_formula_bound(tol, RECT):.3g}")


def test_value_message_prints_the_tolerance() -> None:
    """Is the tolerance used printed in a value-failure message?"""
    outcome = check(2 * RECT, RECT)
    assert TOL.describe(RECT) in outcome.message


# --- hypothesis properties --------------------------------------------------------------------

FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
ARRAYS = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6), elements=FINITE
)
MATRICES = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=FINITE
)


@settings(max_examples=200, deadline=None)
@given(expected=ARRAYS, data=st.data())
def test_reference_plus_tiny_relative_noise_passes(
    expected: np.ndarray, data: st.DataObject
) -> None:
    """Does the reference times (1 + noise), |noise| <= 1e-9, always pass?"""
    noise = data.draw(
        hnp.arrays(np.float64, expected.shape, elements=st.floats(min_value=-1e-9, max_value=1e-9))
    )
    outcome = check(expected * (1.0 + noise), expected)
    assert outcome.passed, outcome.message


@settings(max_examples=200, deadline=None)
@given(expected=MATRICES)
def test_transpose_of_non_symmetric_matrix_fails_as_transposed(expected: np.ndarray) -> None:
    """Does the transpose of a matrix that is not symmetric (beyond the tolerance) fail with
    `transposed`?"""
    bound = TOL.bound(expected)
    symmetric = expected.shape[0] == expected.shape[1] and np.all(
        np.abs(expected - expected.T) <= bound
    )
    assume(not symmetric)
    outcome = check(expected.T, expected)
    assert not outcome.passed
    assert "transposed" in outcome.tags
    assert ("wrong_shape" in outcome.tags) == (expected.shape[0] != expected.shape[1])


@settings(max_examples=200, deadline=None)
@given(expected=ARRAYS)
def test_sign_flip_of_nonzero_array_fails(expected: np.ndarray) -> None:
    """Does the negative of an array with an entry above the tolerance fail, as sign_flipped (or
    as transposed when the matrix is antisymmetric, where -A equals A^T)?"""
    bound = TOL.bound(expected)
    assume(np.max(np.abs(expected)) > bound)
    outcome = check(-expected, expected)
    assert not outcome.passed
    antisymmetric = (
        expected.ndim == 2
        and expected.shape[0] == expected.shape[1]
        and bool(np.all(np.abs(expected + expected.T) <= bound))
    )
    assert outcome.tags == (("transposed",) if antisymmetric else ("sign_flipped",))
