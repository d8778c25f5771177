"""Tests for the oracle ``autograder.checks.oracle``: finite differences against sympy.

The kit grades Jacobians against central finite differences (``fd_jacobian``) for larger instances
and against sympy's exact derivatives (``exact_jacobian``) for small ones. Both must agree far below
the grading tolerance, for every forward map kind, at sizes including 1, and at logits of size
~1000 where a naive softmax overflows.
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
from autograder.checks.questions import JACOBIAN_TOL

ORACLE_RTOL = JACOBIAN_TOL.rtol / 10
"""The oracle must be ten times more accurate than the tolerance students are graded with."""
SEED = 20181029
ELEMENTWISE_NAMES = [name for name, _, _ in oracle.ELEMENTWISE]


def assert_agree(approx: np.ndarray, exact: np.ndarray, *, rtol: float = ORACLE_RTOL) -> None:
    """|approx - exact| <= rtol * max(max|exact|, 1), entrywise, with equal shapes."""
    assert approx.shape == exact.shape
    bound = rtol * max(float(np.max(np.abs(exact))), 1.0)
    worst = float(np.max(np.abs(approx - exact)))
    assert worst <= bound, f"max abs difference {worst:.3g} > {bound:.3g}"


def rng_for(*parts: object) -> np.random.Generator:
    """A generator seeded reproducibly from the test's parameters (no per-process str hash)."""
    return np.random.default_rng([SEED, zlib.crc32(repr(parts).encode())])


# --- fd_jacobian vs sympy, per forward-map kind -----------------------------------------------


@pytest.mark.parametrize(("n", "d"), [(1, 1), (1, 3), (3, 1), (2, 3)])
def test_linear(n: int, d: int) -> None:
    """Does the finite-difference Jacobian of x -> Wx match sympy's (and W itself)?"""
    rng = rng_for("linear", n, d)
    W, x = inst.matrix(rng, n, d), inst.vector(rng, d)
    exact = oracle.exact_jacobian("linear", x, W=W)
    assert_agree(oracle.fd_jacobian(lambda v: W @ v, x), exact)
    assert_agree(exact, W, rtol=1e-12)


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_elementwise(name: str, d: int) -> None:
    """Does the finite-difference Jacobian of an elementwise map match sympy's?"""
    _, f, _ = oracle.ELEMENTWISE[ELEMENTWISE_NAMES.index(name)]
    x = rng_for("elementwise", name, d).uniform(-3.0, 3.0, d)
    exact = oracle.exact_jacobian("elementwise", x, name=name)
    assert_agree(oracle.fd_jacobian(f, x), exact)


@pytest.mark.parametrize(("n", "d"), [(1, 1), (2, 1), (1, 3), (2, 2)])
def test_loss_of_W(n: int, d: int) -> None:
    """Does the finite-difference gradient of W -> L(Wx) match sympy's?"""
    rng = rng_for("loss_of_W", n, d)
    W, x, c = inst.matrix(rng, n, d), inst.vector(rng, d), rng.uniform(0.5, 2.0, n)

    def loss(w: np.ndarray) -> float:
        return oracle.smooth_loss(w.reshape(n, d) @ x, c)

    exact = oracle.exact_jacobian("loss_of_W", W.ravel(), x=x, c=c, n=n)
    assert exact.shape == (1, n * d)
    assert_agree(oracle.fd_jacobian(loss, W.ravel()), exact)
    assert_agree(oracle.fd_gradient(loss, W.ravel()), exact[0])


@pytest.mark.parametrize("offset", [0.0, 1000.0, -1000.0])
@pytest.mark.parametrize("N", [1, 2, 3])
def test_softmax(N: int, offset: float) -> None:
    """Does the finite-difference softmax Jacobian match sympy's, also at logits ~1000?"""
    z = inst.logits(rng_for("softmax", N, offset), N, large=False) + offset
    exact = oracle.exact_jacobian("softmax", z)
    assert_agree(oracle.fd_jacobian(oracle.softmax, z), exact)


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "one-hot"])
@pytest.mark.parametrize("offset", [0.0, 1000.0])
@pytest.mark.parametrize("N", [1, 3])
def test_cross_entropy(N: int, offset: float, hard: bool) -> None:
    """Does the finite-difference cross-entropy gradient match sympy's (and softmax(z) - y)?"""
    rng = rng_for("cross_entropy", N, offset, hard)
    z = inst.logits(rng, N, large=False) + offset
    y = inst.soft_labels(rng, N, hard=hard)
    exact = oracle.exact_jacobian("cross_entropy", z, y=y)
    assert exact.shape == (1, N)
    assert_agree(oracle.fd_gradient(lambda v: oracle.cross_entropy(v, y), z), exact[0])
    assert_agree(exact[0], oracle.softmax(z) - y, rtol=1e-12)


def test_unknown_kind_is_rejected() -> None:
    """Is an unknown forward-map kind a ValueError naming it?"""
    with pytest.raises(ValueError, match="'quadratic'"):
        oracle.exact_jacobian("quadratic", np.ones(2))


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
    w = oracle.mse_minimizer(X, y)
    n = len(y)
    norm_x = float(np.linalg.norm(X, 2))
    scale = 2 / n * norm_x * (norm_x * float(np.linalg.norm(w)) + float(np.linalg.norm(y)))
    grad = oracle.fd_gradient(lambda v: oracle.mse(v, X, y), w)
    assert float(np.linalg.norm(grad)) <= ORACLE_RTOL * scale


@pytest.mark.parametrize(("shape", "condition"), LSQ)
def test_mse_gradient_matches_closed_form(shape: tuple[int, int], condition: float) -> None:
    """Does the finite-difference MSE gradient at a random w equal (2/n) X^T (Xw - y)?"""
    X, y = _mse_problem(*shape, condition)
    w = rng_for("w", *shape).standard_normal(X.shape[1])
    closed = 2 / len(y) * X.T @ (X @ w - y)
    assert_agree(oracle.fd_gradient(lambda v: oracle.mse(v, X, y), w), closed)


@pytest.mark.parametrize(("shape", "condition"), LSQ)
def test_mse_minimiser_beats_perturbations(shape: tuple[int, int], condition: float) -> None:
    """Is the MSE at the minimiser no larger than at nearby points?"""
    X, y = _mse_problem(*shape, condition)
    w = oracle.mse_minimizer(X, y)
    rng = rng_for("perturb", *shape)
    best = oracle.mse(w, X, y)
    for _ in range(5):
        assert best <= oracle.mse(w + 1e-3 * rng.standard_normal(w.size), X, y) + 1e-12


# --- elementwise derivatives ------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 6])
@pytest.mark.parametrize("name", ELEMENTWISE_NAMES)
def test_elementwise_derivative_matches_fd(name: str, d: int) -> None:
    """Is each ELEMENTWISE f' the derivative of its f (diag(f'(x)) = fd Jacobian of f)?"""
    _, f, fprime = oracle.ELEMENTWISE[ELEMENTWISE_NAMES.index(name)]
    x = rng_for("fprime", name, d).uniform(-4.0, 4.0, d)
    assert_agree(oracle.fd_jacobian(f, x), np.diag(fprime(x)))
