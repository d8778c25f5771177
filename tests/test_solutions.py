"""Tests for Exercise 2's model solutions: ``solutions/math_primer/``.

Part 1 proves each closed form of ``derivations.md`` symbolically with sympy for small
dimensions. Part 2 checks the numpy reference against those closed forms and against central
finite differences on seeded random instances, including the edge cases n = 1, d = 1, N = 1,
logits of magnitude ~1000 and a least-squares problem with condition number ~1e6.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
import sympy as sp

from helpers import assert_close_to
from solutions.math_primer.reference import (
    cross_entropy_grad,
    dL_dW,
    jacobian_elementwise,
    jacobian_Wx,
    jacobian_xT_WT,
    mse_minimizer,
    softmax,
    softmax_diag_derivative,
    softmax_jacobian,
)

SMALL_SIZES = list(itertools.product((1, 2, 3), repeat=2))
"""All (n, d) with n, d in {1, 2, 3} for the symbolic proofs."""
CLASS_COUNTS = (1, 2, 3)
"""Numbers of classes N for the symbolic softmax proofs."""

NUMERIC_SIZES = [(1, 1), (1, 4), (4, 1), (3, 5), (6, 2)]
"""(n, d) for the numeric checks, including the edge cases n = 1 and d = 1."""
NUMERIC_CLASSES = (1, 2, 5, 10)
"""N for the numeric softmax checks, including N = 1."""

SEED = 20181029
FD_STEP = 1e-6
FD_RTOL = 1e-6
"""Central differences with step 1e-6 are accurate to ~1e-9; 1e-6 relative leaves ample slack."""


# --- helpers ------------------------------------------------------------------------------


def sym_matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    """A matrix of distinct real symbols ``name{i}{j}``."""
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def sym_vector(name: str, size: int) -> sp.Matrix:
    """A column vector of distinct real symbols ``name{i}``."""
    return sp.Matrix([sp.Symbol(f"{name}{i}", real=True) for i in range(size)])


def is_zero_matrix(m: sp.Matrix) -> bool:
    """Whether every entry of ``m`` simplifies to exactly zero."""
    return all(sp.simplify(entry) == 0 for entry in m)


def rng_for(*key: int) -> np.random.Generator:
    """A numpy Generator seeded by ``SEED`` and the test case, so every case is reproducible."""
    return np.random.default_rng([SEED, *key])


def central_jacobian(F: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian ``J[i, j] ~ dF_i/dx_j`` of ``F`` at ``x`` (any array shape).

    The columns run over the flattened entries of ``x``; a scalar ``F`` gives one row.
    """
    x = np.asarray(x, dtype=float)
    f0 = np.atleast_1d(np.asarray(F(x), dtype=float)).ravel()
    J = np.empty((f0.size, x.size))
    for k in range(x.size):
        step = np.zeros(x.size)
        step[k] = FD_STEP
        step = step.reshape(x.shape)
        plus = np.atleast_1d(F(x + step)).ravel()
        minus = np.atleast_1d(F(x - step)).ravel()
        J[:, k] = (plus - minus) / (2 * FD_STEP)
    return J


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Stable log-softmax, independent of the reference, for the finite-difference loss."""
    m = z.max()
    return z - m - np.log(np.sum(np.exp(z - m)))


# --- Part 1: symbolic proofs of the closed forms -----------------------------------------


@pytest.mark.parametrize(("n", "d"), SMALL_SIZES)
def test_sym_jacobian_Wx_is_W(n: int, d: int) -> None:
    """Is the Jacobian of z = Wx equal to W for every small size?"""
    W, x = sym_matrix("W", n, d), sym_vector("x", d)
    J = (W * x).jacobian(x)
    assert J.shape == (n, d)
    assert is_zero_matrix(J - W)


@pytest.mark.parametrize(("n", "d"), SMALL_SIZES)
def test_sym_jacobian_xT_WT_is_W_not_WT(n: int, d: int) -> None:
    """Is the Jacobian of the row z = x^T W^T equal to W (and not W^T) for every small size?"""
    W, x = sym_matrix("W", n, d), sym_vector("x", d)
    row = x.T * W.T
    assert row.shape == (1, n)
    z = row.T  # the n numbers z_1..z_n; J[i, j] = dz_i/dx_j
    J = z.jacobian(x)
    assert J.shape == (n, d)
    assert is_zero_matrix(J - W)
    if n == d and n > 1:
        assert not is_zero_matrix(J - W.T), "W^T would only be right for symmetric W"


@pytest.mark.parametrize("d", (1, 2, 3))
def test_sym_jacobian_elementwise_is_diagonal(d: int) -> None:
    """Is the Jacobian of z_i = f(x_i), for an arbitrary f, the diagonal matrix diag(f'(x))?"""
    f = sp.Function("f")
    x = sym_vector("x", d)
    z = sp.Matrix([f(xi) for xi in x])
    J = z.jacobian(x)
    expected = sp.diag(*[sp.diff(f(xi), xi) for xi in x])
    assert J.shape == (d, d)
    assert is_zero_matrix(J - expected)


@pytest.mark.parametrize(("n", "d"), SMALL_SIZES)
def test_sym_dL_dW_is_outer_product(n: int, d: int) -> None:
    """For an arbitrary loss L(z) of z = Wx, is dL/dW_ij = delta_i x_j with delta = dL/dz?"""
    W, x = sym_matrix("W", n, d), sym_vector("x", d)
    L = sp.Function("L")
    z = W * x
    loss = L(*z)
    grad = sp.Matrix(n, d, lambda i, j: sp.diff(loss, W[i, j]))
    u = sp.symbols(f"u0:{n}")
    delta = sp.Matrix([sp.diff(L(*u), ui) for ui in u]).subs(dict(zip(u, z)), simultaneous=True)
    assert grad.shape == (n, d)
    assert is_zero_matrix(grad - delta * x.T)


def sym_softmax(z: sp.Matrix) -> sp.Matrix:
    """Softmax of a symbolic column vector, written exactly as on the sheet."""
    total = sum(sp.exp(zk) for zk in z)
    return sp.Matrix([sp.exp(zi) / total for zi in z])


@pytest.mark.parametrize("N", CLASS_COUNTS)
def test_sym_softmax_diagonal_derivative(N: int) -> None:
    """Is d yhat_i / d z_i = yhat_i (1 - yhat_i) for every class i?"""
    z = sym_vector("z", N)
    yhat = sym_softmax(z)
    for i in range(N):
        assert sp.simplify(sp.diff(yhat[i], z[i]) - yhat[i] * (1 - yhat[i])) == 0


@pytest.mark.parametrize("N", CLASS_COUNTS)
def test_sym_softmax_jacobian(N: int) -> None:
    """Is the softmax Jacobian diag(yhat) - yhat yhat^T, i.e. yhat_i (delta_ij - yhat_j)?"""
    z = sym_vector("z", N)
    yhat = sym_softmax(z)
    J = yhat.jacobian(z)
    assert is_zero_matrix(J - (sp.diag(*yhat) - yhat * yhat.T))


@pytest.mark.parametrize("N", CLASS_COUNTS)
def test_sym_softmax_shift_invariance(N: int) -> None:
    """Does subtracting a constant c from every logit leave the softmax unchanged?"""
    z, c = sym_vector("z", N), sp.Symbol("c", real=True)
    shifted = sym_softmax(z - c * sp.ones(N, 1))
    assert is_zero_matrix(shifted - sym_softmax(z))


def sym_cross_entropy_grad(N: int) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix, sp.Matrix]:
    """Symbolic (z, y, yhat, dL/dz) for L = -sum_k y_k log softmax(z)_k."""
    z, y = sym_vector("z", N), sym_vector("y", N)
    yhat = sym_softmax(z)
    loss = -sum(y[k] * sp.log(yhat[k]) for k in range(N))
    grad = sp.Matrix([sp.diff(loss, zi) for zi in z])
    return z, y, yhat, grad


@pytest.mark.parametrize("N", CLASS_COUNTS)
def test_sym_cross_entropy_grad_general_targets(N: int) -> None:
    """For any targets y, is dL/dz - (yhat - y) exactly (sum(y) - 1) * yhat?"""
    _, y, yhat, grad = sym_cross_entropy_grad(N)
    assert is_zero_matrix(grad - (yhat - y) - (sum(y) - 1) * yhat)


@pytest.mark.parametrize("N", CLASS_COUNTS)
def test_sym_cross_entropy_grad_probability_targets(N: int) -> None:
    """When the targets sum to 1 (y_N = 1 - the others), is dL/dz = yhat - y?"""
    _, y, yhat, grad = sym_cross_entropy_grad(N)
    on_simplex = {y[N - 1]: 1 - sum(y[: N - 1])}
    assert is_zero_matrix((grad - (yhat - y)).subs(on_simplex))


@pytest.mark.parametrize(("n", "d"), [(1, 1), (2, 1), (2, 2), (3, 2)])
def test_sym_mse_gradient(n: int, d: int) -> None:
    """Is the gradient of (1/n)||Xw - y||^2 equal to (2/n) X^T (Xw - y) for symbolic X, w, y?"""
    X, w, y = sym_matrix("X", n, d), sym_vector("w", d), sym_vector("y", n)
    r = X * w - y
    loss = (r.T * r)[0, 0] / n
    grad = sp.Matrix([sp.diff(loss, wi) for wi in w])
    assert is_zero_matrix(grad - sp.Rational(2, n) * X.T * r)


def full_rank_rational(n: int, d: int, key: int) -> sp.Matrix:
    """A seeded random integer matrix of shape (n, d) with full column rank d."""
    rng = rng_for(n, d, key)
    while True:
        X = sp.Matrix(rng.integers(-5, 6, size=(n, d)).tolist())
        if X.rank() == d:
            return X


@pytest.mark.parametrize(("n", "d"), [(1, 1), (3, 1), (3, 2), (4, 3), (5, 2)])
def test_sym_normal_equations_solution_is_minimizer(n: int, d: int) -> None:
    """At w = (X^T X)^{-1} X^T y, does the MSE gradient vanish for symbolic y, with X^T X > 0?"""
    X, w, y = full_rank_rational(n, d, key=0), sym_vector("w", d), sym_vector("y", n)
    r = X * w - y
    loss = (r.T * r)[0, 0] / n
    grad = sp.Matrix([sp.diff(loss, wi) for wi in w])
    w_star = (X.T * X).inv() * X.T * y
    assert is_zero_matrix(grad.subs(dict(zip(w, w_star)), simultaneous=True))
    hessian = sp.hessian(loss, list(w))
    assert is_zero_matrix(hessian - sp.Rational(2, n) * X.T * X)
    assert hessian.is_positive_definite, "a full-rank X makes the loss strictly convex"


def test_sym_normal_equations_square_symbolic_X() -> None:
    """For a fully symbolic invertible 2x2 X, does the MSE gradient vanish at (X^T X)^{-1} X^T y?"""
    X, w, y = sym_matrix("X", 2, 2), sym_vector("w", 2), sym_vector("y", 2)
    r = X * w - y
    grad = sp.Rational(2, 2) * X.T * r
    w_star = (X.T * X).inv() * X.T * y
    assert is_zero_matrix(grad.subs(dict(zip(w, w_star)), simultaneous=True))


# --- Part 2: the numpy reference ----------------------------------------------------------


@pytest.mark.parametrize(("n", "d"), NUMERIC_SIZES)
def test_ref_jacobians_of_linear_maps(n: int, d: int) -> None:
    """Do jacobian_Wx and jacobian_xT_WT equal W and the finite-difference Jacobians of Wx?"""
    rng = rng_for(n, d, 1)
    W, x = rng.standard_normal((n, d)), rng.standard_normal(d)
    fd_Wx = central_jacobian(lambda v: W @ v, x)
    fd_xTWT = central_jacobian(lambda v: v @ W.T, x)
    for func, fd in ((jacobian_Wx, fd_Wx), (jacobian_xT_WT, fd_xTWT)):
        got = func(W, x)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        assert_close_to(got, W, rtol=1e-15, label=f"{func.__name__} vs W")
        assert_close_to(got, fd, rtol=FD_RTOL, label=f"{func.__name__} vs finite differences")


ELEMENTWISE = {
    "tanh": (np.tanh, lambda v: 1 - np.tanh(v) ** 2),
    "sin": (np.sin, np.cos),
    "softplus": (lambda v: np.logaddexp(0, v), lambda v: 1 / (1 + np.exp(-v))),
    "cube": (lambda v: v**3, lambda v: 3 * v**2),
}


@pytest.mark.parametrize("d", (1, 2, 7))
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_ref_jacobian_elementwise(name: str, d: int) -> None:
    """Is jacobian_elementwise the (d, d) matrix diag(f'(x)), matching finite differences?"""
    f, f_prime = ELEMENTWISE[name]
    x = rng_for(d, 2).standard_normal(d) * 2
    got = jacobian_elementwise(f_prime, x)
    assert got.shape == (d, d) and got.dtype == np.float64
    assert_close_to(got, np.diag(f_prime(x)), rtol=1e-15, label="diag(f'(x))")
    assert np.all(got[~np.eye(d, dtype=bool)] == 0), "off-diagonal entries must be exactly 0"
    assert_close_to(got, central_jacobian(f, x), rtol=FD_RTOL, label="finite differences")


def test_ref_jacobian_elementwise_accepts_integer_input() -> None:
    """Does jacobian_elementwise return float64 even for integer x and a constant f'?"""
    got = jacobian_elementwise(lambda v: 2, [1, 2, 3])
    assert got.dtype == np.float64
    assert_close_to(got, 2 * np.eye(3), rtol=0, label="f(x) = 2x")


@pytest.mark.parametrize(("n", "d"), NUMERIC_SIZES)
def test_ref_dL_dW(n: int, d: int) -> None:
    """Is dL_dW(dL/dz, x) = delta x^T, the finite-difference gradient of L(Wx) w.r.t. W?"""
    rng = rng_for(n, d, 3)
    W, x, t = rng.standard_normal((n, d)), rng.standard_normal(d), rng.standard_normal(n)

    def loss(z: np.ndarray) -> float:
        return float(np.sum(np.log(np.cosh(z))) + 0.5 * np.sum((z - t) ** 2))

    delta = np.tanh(W @ x) + (W @ x - t)  # dL/dz, by hand
    assert_close_to(delta, central_jacobian(loss, W @ x)[0], rtol=FD_RTOL, label="delta")
    got = dL_dW(delta, x)
    assert got.shape == (n, d) and got.dtype == np.float64
    assert_close_to(got, np.outer(delta, x), rtol=1e-15, label="delta x^T")
    fd = central_jacobian(lambda M: loss(M @ x), W).reshape(n, d)
    assert_close_to(got, fd, rtol=FD_RTOL, label="finite differences in W")


def naive_softmax(z: np.ndarray) -> np.ndarray:
    """The textbook formula, only safe for moderate logits."""
    e = np.exp(z)
    return e / e.sum()


@pytest.mark.parametrize("N", NUMERIC_CLASSES)
def test_ref_softmax_moderate_logits(N: int) -> None:
    """On moderate logits, is softmax the textbook formula, positive and summing to 1?"""
    z = rng_for(N, 4).standard_normal(N) * 3
    got = softmax(z)
    assert got.shape == (N,) and got.dtype == np.float64
    assert_close_to(got, naive_softmax(z), rtol=1e-14, label="softmax")
    assert np.all(got > 0)
    assert abs(got.sum() - 1) < 1e-14


@pytest.mark.parametrize("N", NUMERIC_CLASSES)
@pytest.mark.parametrize("offset", (1000.0, -1000.0))
def test_ref_softmax_family_large_logits(N: int, offset: float) -> None:
    """With logits ~ +-1000, are softmax and its derivatives finite and shift-invariant?"""
    z = rng_for(N, 5).standard_normal(N) * 3
    big = z + offset
    with np.errstate(all="raise"):  # any overflow or invalid operation fails the test
        results = {
            "softmax": (softmax(big), softmax(z)),
            "softmax_diag_derivative": (softmax_diag_derivative(big), softmax_diag_derivative(z)),
            "softmax_jacobian": (softmax_jacobian(big), softmax_jacobian(z)),
        }
    for label, (got, unshifted) in results.items():
        assert np.all(np.isfinite(got)), f"{label}: non-finite output on logits ~{offset}"
        assert_close_to(got, unshifted, rtol=1e-12, label=f"{label} shift invariance")


def test_ref_softmax_extreme_spread() -> None:
    """Is softmax of [1000, 0, -1000] finite and (to double precision) one-hot?"""
    with np.errstate(over="raise", invalid="raise"):
        got = softmax(np.array([1000.0, 0.0, -1000.0]))
    assert_close_to(got, np.array([1.0, 0.0, 0.0]), rtol=1e-15, label="softmax")


@pytest.mark.parametrize("N", NUMERIC_CLASSES)
def test_ref_softmax_jacobian(N: int) -> None:
    """Is softmax_jacobian diag(s) - s s^T, the finite-difference one, symmetric, rows sum 0?"""
    z = rng_for(N, 6).standard_normal(N) * 2
    s = naive_softmax(z)
    got = softmax_jacobian(z)
    assert got.shape == (N, N) and got.dtype == np.float64
    assert_close_to(got, np.diag(s) - np.outer(s, s), rtol=1e-14, label="diag(s) - s s^T")
    assert_close_to(got, central_jacobian(naive_softmax, z), rtol=FD_RTOL, label="finite diff.")
    assert_close_to(got, got.T, rtol=1e-15, label="symmetry")
    assert_close_to(got.sum(axis=1), np.zeros(N), rtol=1e-15, label="row sums")
    diag = softmax_diag_derivative(z)
    assert diag.shape == (N,) and diag.dtype == np.float64
    assert_close_to(diag, s * (1 - s), rtol=1e-14, label="s (1 - s)")
    assert_close_to(diag, np.diag(got), rtol=1e-15, label="Jacobian diagonal")


def targets(kind: str, N: int, rng: np.random.Generator) -> np.ndarray:
    """Probability targets: a one-hot vector or a random soft label, both summing to 1."""
    if kind == "one_hot":
        return np.eye(N)[rng.integers(N)]
    return rng.dirichlet(np.ones(N))


@pytest.mark.parametrize("N", NUMERIC_CLASSES)
@pytest.mark.parametrize("kind", ("one_hot", "soft"))
@pytest.mark.parametrize("offset", (0.0, 1000.0))
def test_ref_cross_entropy_grad(N: int, kind: str, offset: float) -> None:
    """Is cross_entropy_grad = softmax(z) - y and the finite-difference gradient, at any scale?"""
    rng = rng_for(N, 7)
    z = rng.standard_normal(N) * 2 + offset
    y = targets(kind, N, rng)
    with np.errstate(over="raise", invalid="raise"):
        got = cross_entropy_grad(z, y)
    assert got.shape == (N,) and got.dtype == np.float64
    assert_close_to(got, naive_softmax(z - offset) - y, rtol=1e-13, label="yhat - y")
    fd = central_jacobian(lambda v: -np.sum(y * log_softmax(v)), z)[0]
    # At |z| ~ 1000 the loss is computed from numbers of size ~1000, so the step 1e-6 loses
    # about 1000 * eps / 1e-6 ~ 2e-7 in absolute accuracy; the tolerance below covers that.
    assert_close_to(got, fd, rtol=FD_RTOL if offset == 0 else 1e-4, label="finite differences")
    assert abs(got.sum()) < 1e-12, "the gradient of the cross-entropy sums to 0"


def conditioned_problem(n: int, d: int, cond: float, key: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (X, w_true) with X = U diag(s) V^T, singular values log-spaced from 1 to 1/cond."""
    rng = rng_for(n, d, key)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    s = np.logspace(0, -np.log10(cond), d)
    return U @ np.diag(s) @ V.T, rng.standard_normal(d)


@pytest.mark.parametrize(("n", "d"), [(1, 1), (5, 1), (4, 4), (10, 3), (50, 8)])
def test_ref_mse_minimizer_well_conditioned(n: int, d: int) -> None:
    """Does mse_minimizer solve the normal equations and zero the finite-difference gradient?"""
    rng = rng_for(n, d, 8)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    got = mse_minimizer(X, y)
    assert got.shape == (d,) and got.dtype == np.float64
    assert_close_to(got, np.linalg.solve(X.T @ X, X.T @ y), rtol=1e-10, label="normal equations")

    def loss(w: np.ndarray) -> float:
        return float(np.mean((X @ w - y) ** 2))

    grad = central_jacobian(loss, got)[0]
    assert_close_to(grad, np.zeros(d), rtol=1e-8, label="finite-difference gradient at w")
    for k in range(d):  # and it is a minimum: moving along any axis increases the loss
        e = np.eye(d)[k] * 1e-3
        assert loss(got + e) > loss(got) and loss(got - e) > loss(got)


@pytest.mark.parametrize(("n", "d"), [(10, 3), (50, 8), (8, 8)])
def test_ref_mse_minimizer_ill_conditioned(n: int, d: int) -> None:
    """For cond(X) ~ 1e6, is the optimality residual X^T (Xw - y) tiny on the ||X|| ||y|| scale?"""
    cond = 1e6
    X, w_true = conditioned_problem(n, d, cond, key=9)
    assert np.linalg.cond(X) == pytest.approx(cond, rel=1e-6)
    noise = rng_for(n, d, 10).standard_normal(n)
    y = X @ w_true + noise
    w = mse_minimizer(X, y)
    assert w.shape == (d,) and np.all(np.isfinite(w))
    residual = np.linalg.norm(X.T @ (X @ w - y))
    scale = np.linalg.norm(X, 2) * np.linalg.norm(y)
    # A backward-stable solve leaves a relative residual of about cond * eps ~ 1e-10 (||w|| is
    # ~cond here, since the noise is amplified along the small singular directions); forming
    # inv(X^T X) explicitly typically lands near cond^2 * eps ~ 1e-4 .. 1e-8.
    rtol = 1e-9
    assert residual <= rtol * scale, (
        f"||X^T (Xw - y)|| = {residual:.3e} > {rtol:.0e} * ||X|| ||y|| = {rtol * scale:.3e}"
    )


@pytest.mark.parametrize(("n", "d"), [(10, 3), (50, 8), (8, 8)])
def test_ref_mse_minimizer_ill_conditioned_consistent(n: int, d: int) -> None:
    """For cond(X) ~ 1e6 and y = X w_true exactly, is w_true recovered to ~cond * eps?"""
    X, w_true = conditioned_problem(n, d, 1e6, key=11)
    w = mse_minimizer(X, X @ w_true)
    rel_err = np.linalg.norm(w - w_true) / np.linalg.norm(w_true)
    assert rel_err <= 1e-8, f"relative error {rel_err:.3e}; expected about 1e6 * 2.2e-16"


# --- The checks above can tell the classic mistakes apart -----------------------------------


def test_classic_mistakes_are_rejected() -> None:
    """Would the finite-difference comparisons reject W^T, f'(x), and -y/yhat as answers?"""
    rng = rng_for(99)
    W, x = rng.standard_normal((3, 3)), rng.standard_normal(3)
    with pytest.raises(AssertionError):
        assert_close_to(W.T, central_jacobian(lambda v: v @ W.T, x), rtol=FD_RTOL, label="W^T")
    with pytest.raises(AssertionError):
        assert_close_to(np.cos(x), central_jacobian(np.sin, x), rtol=FD_RTOL, label="f'(x)")
    z, y = rng.standard_normal(4), np.eye(4)[1]
    fd = central_jacobian(lambda v: -np.sum(y * log_softmax(v)), z)[0]
    with pytest.raises(AssertionError):
        assert_close_to(-y / naive_softmax(z), fd, rtol=FD_RTOL, label="dL/dyhat")
