"""Tests for the model solutions of Exercise 3: the derivations' closed forms and the reference.

Part 1 proves each closed form of ``solutions/backprop/derivations.md`` symbolically with sympy
for small sizes. Part 2 checks ``solutions/backprop/reference.py`` against those closed forms and
against central finite differences on seeded random instances, including the edge sizes
B = d = k = h = N = 1 and inputs of magnitude ~1000.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
import sympy as sp

from helpers import assert_close_to
from solutions.backprop.reference import (
    linear_backward,
    mlp_backward,
    relu,
    relu_grad,
    sigmoid_grad,
    softmax,
    softmax_ce_batch_grad,
    tanh_grad,
)

SEED = 20181112
FD_STEP = 1e-6
FD_RTOL = 1e-6
"""Central differences with step 1e-6 are accurate to ~1e-9 here; 1e-6 relative leaves slack."""

LAYER_SIZES = [(1, 1, 1), (1, 3, 2), (4, 1, 3), (3, 2, 1), (5, 4, 3)]
"""(B, d, k) for the numeric linear-layer checks, including every size-1 edge."""
BATCH_CLASSES = [(1, 1), (1, 4), (3, 1), (4, 3), (6, 10)]
"""(B, N) for the numeric cross-entropy checks."""
MLP_SIZES = [(1, 1, 1, 1), (1, 3, 2, 4), (4, 1, 3, 2), (3, 2, 1, 3), (5, 3, 4, 1), (6, 4, 5, 3)]
"""(B, d, h, N) for the numeric network checks."""


# --- helpers ------------------------------------------------------------------------------


def sym_matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    """A matrix of distinct real symbols ``name_i_j``."""
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))


def sym_row(name: str, size: int) -> sp.Matrix:
    """A row vector of distinct real symbols ``name_i`` (a bias, broadcast over the rows)."""
    return sp.Matrix(1, size, lambda _, j: sp.Symbol(f"{name}_{j}", real=True))


def ones(rows: int) -> sp.Matrix:
    """The column of ones that broadcasts a bias row over a batch: ``1 b^T``."""
    return sp.ones(rows, 1)


def is_zero_matrix(m: sp.Matrix) -> bool:
    """Whether every entry of ``m`` is exactly zero (expanded first; simplified if need be)."""
    return all(sp.expand(entry) == 0 or sp.simplify(entry) == 0 for entry in m)


def gradient(loss: sp.Expr, of: sp.Matrix) -> sp.Matrix:
    """The matrix of ``d loss / d of[i, j]``, in the shape of ``of``."""
    return of.applyfunc(lambda entry: sp.diff(loss, entry))


def upstream(loss_fn: sp.Function, at: sp.Matrix) -> tuple[sp.Expr, sp.Matrix]:
    """An arbitrary scalar loss ``loss_fn(*at)`` and its gradient ``G = dL/d at`` (shape of at).

    ``G`` is written with fresh symbols ``u`` that are substituted by ``at`` afterwards, so it is the
    derivative of the arbitrary function evaluated at ``at``, as a student would be handed it.
    """
    u = sp.Matrix(*at.shape, lambda i, j: sp.Symbol(f"u_{i}_{j}", real=True))
    G = gradient(loss_fn(*u), u).subs(dict(zip(u, at)), simultaneous=True)
    return loss_fn(*at), G


def sym_softmax_rows(Z: sp.Matrix) -> sp.Matrix:
    """Row-wise softmax of a symbolic matrix, written exactly as on the sheet."""
    out = sp.zeros(*Z.shape)
    for n in range(Z.rows):
        total = sum(sp.exp(Z[n, m]) for m in range(Z.cols))
        for k in range(Z.cols):
            out[n, k] = sp.exp(Z[n, k]) / total
    return out


def rng_for(*key: int) -> np.random.Generator:
    """A numpy Generator seeded by ``SEED`` and the test case, so every case is reproducible."""
    return np.random.default_rng([SEED, *key])


def central_gradient(f: Callable[[np.ndarray], float], at: np.ndarray) -> np.ndarray:
    """Central-difference gradient of the scalar ``f`` at ``at``, in the shape of ``at``."""
    at = np.asarray(at, dtype=float)
    grad = np.empty(at.size)
    for k in range(at.size):
        step = np.zeros(at.size)
        step[k] = FD_STEP
        step = step.reshape(at.shape)
        grad[k] = (f(at + step) - f(at - step)) / (2 * FD_STEP)
    return grad.reshape(at.shape)


def central_derivative(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Central-difference derivative of an elementwise map, entry by entry."""
    return (f(x + FD_STEP) - f(x - FD_STEP)) / (2 * FD_STEP)


def log_softmax_rows(Z: np.ndarray) -> np.ndarray:
    """Stable row-wise log-softmax, independent of the reference, for the finite-difference loss."""
    m = Z.max(axis=1, keepdims=True)
    return Z - m - np.log(np.sum(np.exp(Z - m), axis=1, keepdims=True))


def mean_cross_entropy(Z: np.ndarray, Y: np.ndarray) -> float:
    """``(1/B) sum_b -sum_k Y_bk log softmax(Z_b)_k``."""
    return float(-np.sum(Y * log_softmax_rows(Z)) / Z.shape[0])


def targets(rng: np.random.Generator, B: int, N: int) -> np.ndarray:
    """Probability targets: one-hot rows and soft rows alternating, each summing to 1."""
    rows = [np.eye(N)[rng.integers(N)] if n % 2 else rng.dirichlet(np.ones(N)) for n in range(B)]
    return np.array(rows)


# --- Part 1: symbolic proofs of the closed forms -----------------------------------------

x_sym = sp.Symbol("x", real=True)
p_sym = sp.Symbol("p", positive=True)


def sym_sigmoid(t: sp.Expr) -> sp.Expr:
    """The logistic sigmoid as on the sheet."""
    return 1 / (1 + sp.exp(-t))


def test_sym_sigmoid_grad_is_s_times_one_minus_s() -> None:
    """Is sigma'(x) = sigma(x) (1 - sigma(x)) for every real x?"""
    s = sym_sigmoid(x_sym)
    assert sp.simplify(sp.diff(s, x_sym) - s * (1 - s)) == 0


def test_sym_sigmoid_grad_stable_form() -> None:
    """Is sigma'(x) = e^{-|x|} / (1 + e^{-|x|})^2 (the overflow-free form) for x > 0 and x < 0?"""
    stable = sp.exp(-sp.Abs(x_sym)) / (1 + sp.exp(-sp.Abs(x_sym))) ** 2
    derivative = sp.diff(sym_sigmoid(x_sym), x_sym)
    for point in (p_sym, -p_sym):
        assert sp.simplify((derivative - stable).subs(x_sym, point)) == 0


def test_sym_sigmoid_grad_is_even_with_maximum_one_quarter() -> None:
    """Is sigma' even, with sigma'(0) = 1/4 as its largest value?"""
    derivative = sp.diff(sym_sigmoid(x_sym), x_sym)
    assert sp.simplify(derivative - derivative.subs(x_sym, -x_sym)) == 0
    assert derivative.subs(x_sym, 0) == sp.Rational(1, 4)
    assert sp.simplify(sp.Rational(1, 4) - derivative - (sym_sigmoid(x_sym) - sp.S.Half) ** 2) == 0


def test_sym_tanh_grad() -> None:
    """Is tanh'(x) = 1 - tanh^2(x) = 1 / cosh^2(x), and 4 sigma'(2x)?"""
    derivative = sp.diff(sp.tanh(x_sym), x_sym)
    assert sp.simplify(derivative - (1 - sp.tanh(x_sym) ** 2)) == 0
    assert sp.simplify(derivative - 1 / sp.cosh(x_sym) ** 2) == 0
    s2 = sym_sigmoid(2 * x_sym)
    assert sp.simplify((derivative - 4 * sp.diff(s2, x_sym) / 2).rewrite(sp.exp)) == 0


def test_sym_relu_grad_is_the_positive_mask() -> None:
    """Is relu'(x) 1 for x > 0 and 0 for x < 0 (sympy's derivative of max(x, 0))?"""
    derivative = sp.diff(sp.Max(x_sym, 0), x_sym)
    assert derivative.subs(x_sym, p_sym) == 1
    assert derivative.subs(x_sym, -p_sym) == 0


@pytest.mark.parametrize(("B", "d", "k"), [*itertools.product((1, 2), repeat=3), (3, 2, 2)])
def test_sym_linear_backward(B: int, d: int, k: int) -> None:
    """For an arbitrary loss L(Y) of Y = XW + 1b^T, is (dX, dW, db) = (G W^T, X^T G, G^T 1)?"""
    X, W, b = sym_matrix("X", B, d), sym_matrix("W", d, k), sym_row("b", k)
    Y = X * W + ones(B) * b
    loss, G = upstream(sp.Function("L"), Y)
    assert is_zero_matrix(gradient(loss, X) - G * W.T)
    assert is_zero_matrix(gradient(loss, W) - X.T * G)
    assert is_zero_matrix(gradient(loss, b) - (G.T * ones(B)).T)


@pytest.mark.parametrize(("B", "N"), [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (3, 2)])
def test_sym_softmax_ce_batch_grad(B: int, N: int) -> None:
    """With each row of Y summing to 1, is the gradient of the mean cross-entropy (yhat - Y) / B?"""
    Z, Y = sym_matrix("Z", B, N), sym_matrix("Y", B, N)
    Yhat = sym_softmax_rows(Z)
    loss = -sum(Y[n, c] * sp.log(Yhat[n, c]) for n in range(B) for c in range(N)) / B
    grad = gradient(loss, Z)
    # general targets: the exact gradient is (rowsum(Y) * yhat - Y) / B ...
    rowsum = sp.diag(*[sum(Y.row(n)) for n in range(B)])
    assert is_zero_matrix(grad - (rowsum * Yhat - Y) / B)
    # ... which is (yhat - Y) / B once every row sums to 1
    last = {Y[n, N - 1]: 1 - sum(Y[n, c] for c in range(N - 1)) for n in range(B)}
    assert is_zero_matrix((grad - (Yhat - Y) / B).subs(last, simultaneous=True))


@pytest.mark.parametrize(
    ("B", "d", "h", "N"), [(1, 1, 1, 1), (1, 2, 2, 1), (2, 1, 2, 1), (1, 1, 2, 2), (2, 2, 1, 2)]
)
def test_sym_mlp_backward(B: int, d: int, h: int, N: int) -> None:
    """For an arbitrary loss L(Z) of Z = relu(X W1 + 1b1^T) W2 + 1b2^T, do the boxed formulas
    (dW2 = H^T G, db2 = G^T 1, dW1 = X^T ((G W2^T) * [A > 0]), db1 = ...) hold exactly?"""
    X, W1, b1 = sym_matrix("X", B, d), sym_matrix("V", d, h), sym_row("c", h)
    W2, b2 = sym_matrix("W", h, N), sym_row("b", N)
    A = X * W1 + ones(B) * b1
    H = A.applyfunc(lambda a: sp.Max(a, 0))
    Z = H * W2 + ones(B) * b2
    loss, G = upstream(sp.Function("L"), Z)
    mask = A.applyfunc(sp.Heaviside)
    GA = (G * W2.T).multiply_elementwise(mask)
    assert is_zero_matrix(gradient(loss, W2) - H.T * G)
    assert is_zero_matrix(gradient(loss, b2) - (G.T * ones(B)).T)
    assert is_zero_matrix(gradient(loss, W1) - X.T * GA)
    assert is_zero_matrix(gradient(loss, b1) - (GA.T * ones(B)).T)


def test_sym_mlp_without_mask_is_the_linear_network() -> None:
    """Is the 'forgotten mask' answer X^T (G W2^T) the gradient of the network without the ReLU?"""
    X, W1, b1 = sym_matrix("X", 2, 2), sym_matrix("V", 2, 2), sym_row("c", 2)
    W2, b2 = sym_matrix("W", 2, 2), sym_row("b", 2)
    Z = (X * W1 + ones(2) * b1) * W2 + ones(2) * b2
    loss, G = upstream(sp.Function("L"), Z)
    assert is_zero_matrix(gradient(loss, W1) - X.T * (G * W2.T))


# --- Part 2: the numpy reference ----------------------------------------------------------


def test_ref_helpers() -> None:
    """Are the given softmax (row-wise, shift-invariant) and relu what the sheet says?"""
    Z = rng_for(0).standard_normal((3, 4))
    P = softmax(Z)
    assert_close_to(P.sum(axis=1), np.ones(3), rtol=1e-15, label="row sums")
    assert_close_to(
        P,
        softmax(Z + np.array([[1000.0], [-1000.0], [0.0]])),
        rtol=1e-12,
        label="shift invariance per row",
    )
    assert_close_to(softmax(Z[0]), P[0], rtol=1e-15, label="1-D input")
    assert_close_to(relu(np.array([-2.0, 3.0])), np.array([0.0, 3.0]), rtol=0, label="relu")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic sigmoid, via tanh so that it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@pytest.mark.parametrize("d", (1, 2, 9))
def test_ref_sigmoid_grad_moderate(d: int) -> None:
    """On moderate x, is sigmoid_grad s (1 - s) and the finite-difference derivative?"""
    x = rng_for(d, 1).standard_normal(d) * 4
    got = sigmoid_grad(x)
    assert got.shape == (d,) and got.dtype == np.float64
    s = sigmoid(x)
    assert_close_to(got, s * (1 - s), rtol=1e-14, label="s (1 - s)")
    assert_close_to(got, central_derivative(sigmoid, x), rtol=FD_RTOL, label="finite differences")


def test_ref_sigmoid_grad_large_magnitudes() -> None:
    """At |x| ~ 1000, is sigmoid_grad finite, without overflow, and accurate in the tails?"""
    x = np.array([-1000.0, -745.0, -40.0, 0.0, 40.0, 745.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is the right answer
        got = sigmoid_grad(x)
    assert np.all(np.isfinite(got))
    assert got[3] == 0.25
    assert_close_to(got, got[::-1], rtol=0, label="evenness")
    # sigma'(40) = e^-40 / (1 + e^-40)^2 to full relative precision (1 - s would cancel here)
    assert abs(got[4] / np.exp(-40.0) - 1) < 1e-14
    assert got[0] == 0.0 and got[6] == 0.0


@pytest.mark.parametrize("d", (1, 2, 9))
def test_ref_tanh_grad(d: int) -> None:
    """Is tanh_grad 1 - tanh^2 and the finite-difference derivative, also at |x| ~ 1000?"""
    x = rng_for(d, 2).standard_normal(d) * 2
    got = tanh_grad(x)
    assert got.shape == (d,) and got.dtype == np.float64
    assert_close_to(got, 1 - np.tanh(x) ** 2, rtol=1e-15, label="1 - tanh^2")
    assert_close_to(got, central_derivative(np.tanh, x), rtol=FD_RTOL, label="finite differences")
    with np.errstate(over="raise", invalid="raise"):
        assert_close_to(tanh_grad(x + 1000.0), np.zeros(d), rtol=0, label="saturation")


@pytest.mark.parametrize("d", (1, 2, 9))
def test_ref_relu_grad(d: int) -> None:
    """Is relu_grad the float 0/1 mask of x > 0, matching finite differences away from 0?"""
    x = rng_for(d, 3).uniform(0.1, 3.0, d) * rng_for(d, 4).choice([-1.0, 1.0], d)
    got = relu_grad(x)
    assert got.shape == (d,) and got.dtype == np.float64
    assert set(np.unique(got)) <= {0.0, 1.0}
    assert_close_to(got, (x > 0).astype(float), rtol=0, label="mask")
    assert_close_to(got, central_derivative(relu, x), rtol=FD_RTOL, label="finite differences")


@pytest.mark.parametrize(("B", "d", "k"), LAYER_SIZES)
def test_ref_linear_backward(B: int, d: int, k: int) -> None:
    """Are dX, dW, db the finite-difference gradients of a smooth loss of Y = XW + b?"""
    rng = rng_for(B, d, k, 5)
    X, W, b = rng.standard_normal((B, d)), rng.standard_normal((d, k)), rng.standard_normal(k)
    C = rng.uniform(0.5, 2.0, (B, k))

    def loss(Y: np.ndarray) -> float:
        return float(np.sum(C * np.log(np.cosh(Y))) + 0.5 * np.sum(Y))

    dY = C * np.tanh(X @ W + b) + 0.5  # dL/dY, by hand
    assert_close_to(dY, central_gradient(loss, X @ W + b), rtol=FD_RTOL, label="dY")
    dX, dW, db = linear_backward(X, W, b, dY)
    assert (dX.shape, dW.shape, db.shape) == ((B, d), (d, k), (k,))
    assert_close_to(dX, dY @ W.T, rtol=1e-15, label="dY W^T")
    assert_close_to(dW, X.T @ dY, rtol=1e-15, label="X^T dY")
    assert_close_to(db, dY.sum(axis=0), rtol=1e-15, label="column sums of dY")
    fd = {
        "dX": central_gradient(lambda M: loss(M @ W + b), X),
        "dW": central_gradient(lambda M: loss(X @ M + b), W),
        "db": central_gradient(lambda v: loss(X @ W + v), b),
    }
    for label, got in (("dX", dX), ("dW", dW), ("db", db)):
        assert_close_to(got, fd[label], rtol=FD_RTOL, label=f"{label} vs finite differences")


@pytest.mark.parametrize(("B", "N"), BATCH_CLASSES)
@pytest.mark.parametrize("offset", (0.0, 1000.0, -1000.0))
def test_ref_softmax_ce_batch_grad(B: int, N: int, offset: float) -> None:
    """Is softmax_ce_batch_grad (yhat - Y) / B, the finite-difference gradient, at any scale?"""
    rng = rng_for(B, N, 6)
    Z = rng.standard_normal((B, N)) * 2
    Y = targets(rng, B, N)
    with np.errstate(over="raise", invalid="raise"):
        got = softmax_ce_batch_grad(Z + offset, Y)
    assert got.shape == (B, N) and got.dtype == np.float64
    naive = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    assert_close_to(got, (naive - Y) / B, rtol=1e-13, label="(yhat - Y) / B")
    fd = central_gradient(lambda M: mean_cross_entropy(M, Y), Z + offset)
    # At |Z| ~ 1000 the loss is computed from numbers of size ~1000, so the step 1e-6 loses
    # about 1000 * eps / 1e-6 ~ 2e-7 in absolute accuracy; the tolerance below covers that.
    assert_close_to(got, fd, rtol=FD_RTOL if offset == 0 else 1e-4, label="finite differences")
    assert_close_to(got.sum(axis=1), np.zeros(B), rtol=1e-15, label="row sums")


def mlp_instance(B: int, d: int, h: int, N: int, key: int) -> tuple[np.ndarray, ...]:
    """A seeded network whose pre-activations stay at least 0.05 away from the ReLU kink."""
    rng = rng_for(B, d, h, N, key)
    X, Y = rng.standard_normal((B, d)), targets(rng, B, N)
    W1, b1 = rng.standard_normal((d, h)), rng.standard_normal(h)
    W2, b2 = rng.standard_normal((h, N)), rng.standard_normal(N)
    while np.any(np.abs(X @ W1 + b1) < 0.05):
        b1 = b1 + 0.1
    return X, Y, W1, b1, W2, b2


def mlp_loss(X, Y, W1, b1, W2, b2) -> float:
    """The sheet's network and loss, independent of the reference."""
    Z = np.maximum(X @ W1 + b1, 0.0) @ W2 + b2
    return mean_cross_entropy(Z, Y)


@pytest.mark.parametrize(("B", "d", "h", "N"), MLP_SIZES)
def test_ref_mlp_backward(B: int, d: int, h: int, N: int) -> None:
    """Are dW1, db1, dW2, db2 the finite-difference gradients of the network's mean loss?"""
    X, Y, W1, b1, W2, b2 = mlp_instance(B, d, h, N, key=7)
    grads = mlp_backward(X, Y, W1, b1, W2, b2)
    params = (W1, b1, W2, b2)
    for index, (got, param) in enumerate(zip(grads, params)):
        assert got.shape == param.shape and got.dtype == np.float64

        def loss_of(value: np.ndarray, index: int = index) -> float:
            values = list(params)
            values[index] = value
            return mlp_loss(X, Y, *values)

        label = ("dW1", "db1", "dW2", "db2")[index]
        assert_close_to(got, central_gradient(loss_of, param), rtol=FD_RTOL, label=label)


@pytest.mark.parametrize(("B", "d", "h", "N"), MLP_SIZES)
def test_ref_mlp_backward_is_the_chain_of_the_parts(B: int, d: int, h: int, N: int) -> None:
    """Does mlp_backward equal the boxed chain X^T((G W2^T) * [A > 0]) etc. written out by hand?"""
    X, Y, W1, b1, W2, b2 = mlp_instance(B, d, h, N, key=8)
    A = X @ W1 + b1
    H = np.maximum(A, 0.0)
    Z = H @ W2 + b2
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    G = (P / P.sum(axis=1, keepdims=True) - Y) / B
    GA = (G @ W2.T) * (A > 0)
    expected = (X.T @ GA, GA.sum(axis=0), H.T @ G, G.sum(axis=0))
    for label, got, want in zip(
        ("dW1", "db1", "dW2", "db2"), mlp_backward(X, Y, W1, b1, W2, b2), expected
    ):
        assert_close_to(got, want, rtol=1e-13, label=label)


def test_ref_rejects_mismatched_shapes() -> None:
    """Does the reference name the bad shape instead of broadcasting silently?"""
    X, W, b = np.ones((2, 3)), np.ones((3, 4)), np.ones(4)
    with pytest.raises(ValueError, match="dY has shape"):
        linear_backward(X, W, b, np.ones((4, 2)))
    with pytest.raises(ValueError, match="b has shape"):
        linear_backward(X, W, np.ones(3), np.ones((2, 4)))
    with pytest.raises(ValueError, match="Y has shape"):
        softmax_ce_batch_grad(np.ones((2, 3)), np.ones((3, 2)) / 2)


# --- The checks above can tell the classic mistakes apart -----------------------------------


def test_classic_mistakes_are_rejected() -> None:
    """Would the finite-difference checks reject a missing 1/B, a per-sample db, a missing mask?"""
    X, Y, W1, b1, W2, b2 = mlp_instance(4, 3, 5, 3, key=9)
    Z = np.maximum(X @ W1 + b1, 0.0) @ W2 + b2
    fd_Z = central_gradient(lambda M: mean_cross_entropy(M, Y), Z)
    with pytest.raises(AssertionError):
        assert_close_to(softmax(Z) - Y, fd_Z, rtol=FD_RTOL, label="no 1/B")
    G = softmax_ce_batch_grad(Z, Y)
    with pytest.raises(AssertionError):
        assert_close_to(G, G.sum(axis=0), rtol=FD_RTOL, label="per-sample db")
    H = np.maximum(X @ W1 + b1, 0.0)
    assert np.any(H == 0), "the instance must have inactive units for the mask to matter"
    fd_W1 = central_gradient(lambda M: mlp_loss(X, Y, M, b1, W2, b2), W1)
    with pytest.raises(AssertionError):
        assert_close_to(X.T @ (G @ W2.T), fd_W1, rtol=FD_RTOL, label="no ReLU mask")
