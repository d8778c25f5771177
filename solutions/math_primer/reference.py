"""Reference implementation of every graded function of the "Exercise 2: Math Primer" sheet.

Each function is the closed form derived in ``solutions/math_primer/derivations.md``. Vectors are 1-D numpy
arrays; every function converts its inputs with ``np.asarray(..., dtype=float)`` and returns a new
float64 array, so list or integer inputs are fine and the caller's arrays are never aliased.

Conventions (the sheet's): the Jacobian of ``F: R^d -> R^n`` has shape ``(n, d)`` with
``J[i, j] = dF_i / dx_j``; ``dL/dW`` has the shape of ``W``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "cross_entropy_grad",
    "dL_dW",
    "jacobian_Wx",
    "jacobian_elementwise",
    "jacobian_xT_WT",
    "mse_minimizer",
    "softmax",
    "softmax_diag_derivative",
    "softmax_jacobian",
]


def _matrix(a: object, name: str) -> np.ndarray:
    """Return ``a`` as a float 2-D array, or raise a ValueError naming the bad shape."""
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}")
    return arr


def _vector(a: object, name: str) -> np.ndarray:
    """Return ``a`` as a float 1-D array, or raise a ValueError naming the bad shape."""
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    return arr


def _check_Wx(W: np.ndarray, x: np.ndarray) -> None:
    """Raise a ValueError if ``W @ x`` is not defined."""
    if W.shape[1] != x.shape[0]:
        raise ValueError(
            f"W has shape {W.shape} but x has length {x.shape[0]}; need W.shape[1] == len(x)"
        )


# --- Exercise 2-1 --------------------------------------------------------------------------


def jacobian_Wx(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Jacobian of ``z = W x`` with respect to ``x`` (exercise 2-1 a).

    Args:
        W: Matrix of shape ``(n, d)``.
        x: Vector of shape ``(d,)``; the Jacobian does not depend on it (the map is linear).

    Returns:
        ``W`` itself (as a new float64 array), shape ``(n, d)``.
    """
    W = _matrix(W, "W")
    x = _vector(x, "x")
    _check_Wx(W, x)
    return W.copy()


def jacobian_xT_WT(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Jacobian of ``z = x^T W^T`` with respect to ``x`` (exercise 2-1 b).

    ``x^T W^T = (W x)^T`` holds the same ``n`` numbers as ``W x``, only written as a row, so with
    ``J[i, j] = dz_i / dx_j`` the Jacobian is again ``W`` (not ``W^T``).

    Args:
        W: Matrix of shape ``(n, d)``.
        x: Vector of shape ``(d,)``.

    Returns:
        ``W`` (as a new float64 array), shape ``(n, d)``.
    """
    W = _matrix(W, "W")
    x = _vector(x, "x")
    _check_Wx(W, x)
    return W.copy()


def jacobian_elementwise(f_prime: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Jacobian of ``z = f(x)`` applied elementwise, ``z_i = f(x_i)`` (exercise 2-1 c).

    Args:
        f_prime: The derivative ``f'``, applied elementwise to an array.
        x: Vector of shape ``(d,)``.

    Returns:
        The diagonal matrix ``diag(f'(x))`` of shape ``(d, d)``: ``z_i`` depends on ``x_i`` only.
    """
    x = _vector(x, "x")
    slopes = np.broadcast_to(np.asarray(f_prime(x), dtype=float), x.shape)
    return np.diag(slopes).astype(float)


def dL_dW(dL_dz: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of ``L(W x)`` with respect to ``W`` (exercise 2-1 d).

    Args:
        dL_dz: The upstream gradient ``delta = dL/dz``, shape ``(n,)``.
        x: The input vector, shape ``(d,)``.

    Returns:
        The outer product ``delta x^T`` of shape ``(n, d)``: ``dL/dW_ij = delta_i x_j``.
    """
    delta = _vector(dL_dz, "dL_dz")
    x = _vector(x, "x")
    return np.outer(delta, x)


# --- Exercise 2-2 --------------------------------------------------------------------------


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax ``exp(z_i) / sum_k exp(z_k)``.

    The maximum logit is subtracted first; softmax is invariant to adding a constant to every
    logit, and afterwards every exponent is ``<= 0`` so nothing overflows.

    Args:
        z: Logits, shape ``(N,)``; all entries must be finite.

    Returns:
        Probabilities, shape ``(N,)``, positive up to underflow and summing to 1.
    """
    z = _vector(z, "z")
    if z.size == 0:
        raise ValueError("z must contain at least one logit, got an empty array")
    e = np.exp(z - z.max())
    return e / e.sum()


def softmax_diag_derivative(z: np.ndarray) -> np.ndarray:
    """The diagonal derivatives ``d yhat_i / d z_i = yhat_i (1 - yhat_i)`` (exercise 2-2 a).

    Args:
        z: Logits, shape ``(N,)``.

    Returns:
        Vector of shape ``(N,)``.
    """
    s = softmax(z)
    return s * (1.0 - s)


def softmax_jacobian(z: np.ndarray) -> np.ndarray:
    """Full softmax Jacobian ``d yhat_i / d z_j = yhat_i (delta_ij - yhat_j)`` (exercise 2-2 a).

    Args:
        z: Logits, shape ``(N,)``.

    Returns:
        ``diag(yhat) - yhat yhat^T``, shape ``(N, N)``; symmetric, rows and columns sum to 0.
    """
    s = softmax(z)
    return np.diag(s) - np.outer(s, s)


def cross_entropy_grad(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of ``L = -sum_k y_k log softmax(z)_k`` with respect to ``z`` (exercise 2-2 b).

    Args:
        z: Logits, shape ``(N,)``.
        y: Target probabilities, shape ``(N,)``, summing to 1 (one-hot or soft labels). For targets
            that do not sum to 1 the exact gradient would be ``sum(y) * yhat - y``; the sheet
            assumes ``sum(y) = 1``, which gives the closed form returned here.

    Returns:
        ``softmax(z) - y``, shape ``(N,)``.
    """
    s = softmax(z)
    y = _vector(y, "y")
    if y.shape != s.shape:
        raise ValueError(f"y must have the same shape as z, got {y.shape} and {s.shape}")
    return s - y


# --- Exercise 2-3 --------------------------------------------------------------------------


def mse_minimizer(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights minimising ``(1/n) ||X w - y||^2`` (exercise 2-3).

    Mathematically ``w = (X^T X)^{-1} X^T y`` for ``X`` of full column rank. Numerically we never
    form the inverse (nor ``X^T X``, whose condition number is the square of ``X``'s): an SVD-based
    least-squares solve is backward stable and also handles rank-deficient ``X``, where it returns
    the minimum-norm minimiser.

    Args:
        X: Data matrix, shape ``(n, d)``, one sample per row.
        y: Targets, shape ``(n,)``.

    Returns:
        The minimiser ``w``, shape ``(d,)``.
    """
    X = _matrix(X, "X")
    y = _vector(y, "y")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has length {y.shape[0]}; they must match")
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    return w


# --- the closed forms in sympy, proven against the exact derivatives by tests/test_packs.py ---


def _sympy():
    import sympy as sp

    return sp


def _closed_elementwise(f, x):
    sp = _sympy()
    t = sp.Symbol("t")
    fprime = {
        "sin": sp.cos(t),
        "tanh": 1 - sp.tanh(t) ** 2,
        "cube": 3 * t**2,
        "softplus": 1 / (1 + sp.exp(-t)),
    }[f]
    return sp.diag(*[fprime.subs(t, v) for v in x])


def _closed_dL_dW(W, x, c):
    sp = _sympy()
    z = W * x
    dL_dz = sp.Matrix([c[i] * sp.tanh(z[i]) + sp.Rational(1, 2) for i in range(W.rows)])
    return dL_dz * x.T


def _softmax(z):
    sp = _sympy()
    e = z.applyfunc(sp.exp)
    return e / sum(e)


def _closed_softmax_diag(z):
    s = _softmax(z)
    return s.applyfunc(lambda v: v * (1 - v))


def _closed_softmax_jacobian(z):
    sp = _sympy()
    s = _softmax(z)
    return sp.diag(*s) - s * s.T


def _closed_cross_entropy_grad(z, y):
    # softmax(z) - y uses sum(y) = 1; for free symbols y the gradient is softmax(z) sum(y) - y
    return _softmax(z) * sum(y) - y


CLOSED_FORMS = {
    "jacobian_Wx": lambda W, x: W,
    "jacobian_xT_WT": lambda W, x: W,
    "jacobian_elementwise": _closed_elementwise,
    "dL_dW": _closed_dL_dW,
    "softmax_diag_derivative": _closed_softmax_diag,
    "softmax_jacobian": _closed_softmax_jacobian,
    "cross_entropy_grad": _closed_cross_entropy_grad,
}
"""Function -> its closed form in sympy, from the spec's inputs (see derivations.md)."""
