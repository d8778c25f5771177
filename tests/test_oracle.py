"""Tests for the oracle ``autograder.checks.oracle``: finite differences and shared maps.

The kit grades derivatives against central finite differences (``fd_jacobian``) of a pack's
forward maps for larger instances and against sympy's exact derivatives for small ones; that the
two agree for every declared map of every pack is tested in ``test_packs.py``. Here: the finite
differences themselves, the stable softmax at logits of size ~1000, and the least-squares
reference of Exercise 2's 2-3 (its ``Computed`` target).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.checks import instances as inst
from autograder.checks import oracle
from autograder.pack import DEFAULT_TOLERANCE, load

ORACLE_RTOL = DEFAULT_TOLERANCE.rtol / 10
"""The oracle must be ten times more accurate than the tolerance students are graded with."""
SEED = 20181029
LSQ_TARGET = load("math_primer").question("q3").functions[0]
"""Exercise 2's minimiser: its reference is an SVD least-squares solve."""


def mse(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of Xw against y."""
    r = X @ w - y
    return float(r @ r / len(y))


def mse_minimizer(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The pack's reference minimiser."""
    return LSQ_TARGET.solve(X=X, y=y)


@pytest.mark.parametrize(("n", "d"), [(1, 1), (1, 3), (3, 1), (2, 3)])
def test_linear_map(n: int, d: int) -> None:
    """Is the finite-difference Jacobian of x -> Wx equal to W, at every size including 1?"""
    rng = rng_for("linear", n, d)
    W, x = inst.matrix(rng, n, d), inst.vector(rng, d)
    assert_agree(oracle.fd_jacobian(lambda v: W @ v, x), W)


@pytest.mark.parametrize("d", [1, 4])
def test_gradient_of_a_scalar_map(d: int) -> None:
    """Is fd_gradient of sum(c * x**2) equal to 2 c x?"""
    rng = rng_for("gradient", d)
    c, x = inst.vector(rng, d), inst.vector(rng, d)
    assert_agree(oracle.fd_gradient(lambda v: float(np.sum(c * v**2)), x), 2 * c * x)


def test_cross_entropy_is_stable_at_large_logits() -> None:
    """Is the cross-entropy of logits around 1000 finite and equal to the shifted one?"""
    z, y = np.array([1000.0, 1001.0, 999.0]), np.array([0.2, 0.5, 0.3])
    assert np.isfinite(oracle.cross_entropy(z, y))
    assert oracle.cross_entropy(z, y) == pytest.approx(oracle.cross_entropy(z - 1000.0, y))


def assert_agree(approx: np.ndarray, exact: np.ndarray, *, rtol: float = ORACLE_RTOL) -> None:
    """|approx - exact| <= rtol * max(max|exact|, 1), entrywise, with equal shapes."""
    assert approx.shape == exact.shape
    bound = rtol * max(float(np.max(np.abs(exact))), 1.0)
    worst = float(np.max(np.abs(approx - exact)))
    assert worst <= bound, f"max abs difference {worst:.3g} > {bound:.3g}"


def rng_for(*parts: object) -> np.random.Generator:
    """A generator seeded reproducibly from the test's parameters (no per-process str hash)."""
    return np.random.default_rng([SEED, zlib.crc32(repr(parts).encode())])


# --- softmax Jacobian: rows and columns sum to zero ---------------------------------------------

LOGITS = hnp.arrays(
    np.float64,
    st.integers(min_value=1, max_value=8),
    elements=st.floats(min_value=-20.0, max_value=20.0, allow_nan=False),
)


@settings(max_examples=100, deadline=None)
@given(z=LOGITS, offset=st.sampled_from([0.0, 1000.0, -1000.0]) | st.floats(-1100.0, 1100.0))
def test_softmax_jacobian_rows_and_columns_sum_to_zero(z: np.ndarray, offset: float) -> None:
    """Do the rows (shift invariance) and columns (outputs sum to 1) of the finite-difference
    softmax Jacobian sum to zero, for logits up to ~1000?"""
    J = oracle.fd_jacobian(oracle.softmax, z + offset)
    assert J.shape == (z.size, z.size)
    assert np.all(np.isfinite(J))
    assert np.max(np.abs(J.sum(axis=1))) <= ORACLE_RTOL
    assert np.max(np.abs(J.sum(axis=0))) <= ORACLE_RTOL


@settings(max_examples=100, deadline=None)
@given(z=LOGITS, offset=st.floats(-1100.0, 1100.0))
def test_softmax_is_a_finite_probability_vector(z: np.ndarray, offset: float) -> None:
    """Is the oracle's softmax stable: finite, nonnegative, summing to one, at any offset?"""
    s = oracle.softmax(z + offset)
    assert np.all(np.isfinite(s)) and np.all(s >= 0)
    assert abs(s.sum() - 1.0) <= 1e-12


# --- the MSE oracle of q3 ---------------------------------------------------------------------

LSQ = [((1, 1), 10.0), ((5, 1), 10.0), ((8, 3), 10.0), ((4, 4), 10.0), ((12, 4), 1e6)]


def _mse_problem(n: int, d: int, condition: float) -> tuple[np.ndarray, np.ndarray]:
    rng = rng_for("mse", n, d, condition)
    return inst.design(rng, n, d, condition=condition), rng.standard_normal(n)


@pytest.mark.parametrize(("shape", "condition"), LSQ)
def test_mse_gradient_vanishes_at_the_minimiser(shape: tuple[int, int], condition: float) -> None:
    """Is the finite-difference MSE gradient at oracle.mse_minimizer ~0 relative to its scale?"""
    X, y = _mse_problem(*shape, condition)
    w = mse_minimizer(X, y)
    n = len(y)
    norm_x = float(np.linalg.norm(X, 2))
    scale = 2 / n * norm_x * (norm_x * float(np.linalg.norm(w)) + float(np.linalg.norm(y)))
    grad = oracle.fd_gradient(lambda v: mse(v, X, y), w)
    assert float(np.linalg.norm(grad)) <= ORACLE_RTOL * scale


@pytest.mark.parametrize(("shape", "condition"), LSQ)
def test_mse_gradient_matches_closed_form(shape: tuple[int, int], condition: float) -> None:
    """Does the finite-difference MSE gradient at a random w equal (2/n) X^T (Xw - y)?"""
    X, y = _mse_problem(*shape, condition)
    w = rng_for("w", *shape).standard_normal(X.shape[1])
    closed = 2 / len(y) * X.T @ (X @ w - y)
    assert_agree(oracle.fd_gradient(lambda v: mse(v, X, y), w), closed)


@pytest.mark.parametrize(("shape", "condition"), LSQ)
def test_mse_minimiser_beats_perturbations(shape: tuple[int, int], condition: float) -> None:
    """Is the MSE at the minimiser no larger than at nearby points?"""
    X, y = _mse_problem(*shape, condition)
    w = mse_minimizer(X, y)
    rng = rng_for("perturb", *shape)
    best = mse(w, X, y)
    for _ in range(5):
        assert best <= mse(w + 1e-3 * rng.standard_normal(w.size), X, y) + 1e-12


def _column_by_column(f, x: np.ndarray, h: float) -> np.ndarray:
    """Central differences one column at a time, each a subtraction and a division of its own."""
    columns = []
    for j in range(x.size):
        plus, minus = x + 0.0, x - 0.0
        plus[j], minus[j] = x[j] + h, x[j] - h
        columns.append((np.atleast_1d(f(plus)) - np.atleast_1d(f(minus))) / (2 * h))
    return np.stack(columns, axis=1)


_BUFFER = np.zeros(3)


def _one_buffer(v: np.ndarray) -> np.ndarray:
    """A map that hands out the same array every time (its earlier values are overwritten)."""
    _BUFFER[:] = np.sin(v[:3]) * v.sum()
    return _BUFFER


@pytest.mark.parametrize(
    "f",
    [
        oracle.softmax,
        oracle.log_softmax,
        lambda v: np.array([oracle.cross_entropy(v, np.full(v.size, 1 / v.size))]),
        lambda v: np.float64(np.sum(v**3)),  # a scalar (0-d) value
        lambda v: (v * 2).astype(np.float32),  # not float64
        _one_buffer,
    ],
    ids=["softmax", "log_softmax", "cross_entropy", "scalar", "float32", "one_buffer"],
)
def test_fd_jacobian_is_bit_for_bit_the_column_by_column_differences(f) -> None:
    """Is the Jacobian, computed with all columns' differences at once, the same floats as one
    column at a time, also for scalar, float32 and buffer-reusing maps?"""
    rng = np.random.default_rng(SEED)
    for size in (1, 3, 10):
        x = rng.normal(0.0, 3.0, size) + (0.0 if size < 10 else 1000.0)
        x[0] = -0.0
        got, want = oracle.fd_jacobian(f, x, h=1e-5), _column_by_column(f, x, 1e-5)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        assert got.flags.c_contiguous
