"""Reference implementation of every graded function of the "Exercise 3: Backpropagation" sheet.

Each function is the closed form derived in ``solutions/backprop/derivations.md``. Inputs are
converted with ``np.asarray(..., dtype=float)``; every function returns new float64 arrays, so list
or integer inputs are fine and the caller's arrays are never aliased.

Conventions (the sheet's): a batch is a 2-D array with one sample per row, ``X`` of shape
``(B, d)``; a layer computes ``Y = X W + b`` with ``W`` of shape ``(d, k)`` and ``b`` of shape
``(k,)`` broadcast over the rows. The gradient of the scalar loss with respect to an array has the
shape of that array.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "linear_backward",
    "mlp_backward",
    "relu",
    "relu_grad",
    "sigmoid_grad",
    "softmax",
    "softmax_ce_batch_grad",
    "tanh_grad",
]


def _array(a: object, name: str, ndim: int) -> np.ndarray:
    """Return ``a`` as a float array with ``ndim`` axes, or raise a ValueError naming its shape."""
    arr = np.asarray(a, dtype=float)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    return arr


def _require(condition: bool, message: str) -> None:
    """Raise a ValueError with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(message)


# --- the given helpers ------------------------------------------------------------------------


def softmax(Z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax along the last axis (each row of a batch separately).

    The largest logit of each row is subtracted first: softmax is invariant to adding a constant
    to every logit of a row, and afterwards every exponent is ``<= 0``, so nothing overflows.

    Args:
        Z: Logits, shape ``(N,)`` or ``(B, N)``; entries must be finite.

    Returns:
        Probabilities of the same shape, each row positive up to underflow and summing to 1.
    """
    Z = np.asarray(Z, dtype=float)
    E = np.exp(Z - np.max(Z, axis=-1, keepdims=True))
    return E / np.sum(E, axis=-1, keepdims=True)


def relu(A: np.ndarray) -> np.ndarray:
    """The rectifier ``max(a, 0)``, elementwise."""
    return np.maximum(np.asarray(A, dtype=float), 0.0)


# --- Exercise 3-1: derivatives of activation functions --------------------------------------


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """The derivative ``sigma'(x) = sigma(x) (1 - sigma(x))`` of the logistic sigmoid (3-1 a).

    Written as ``e^{-|x|} / (1 + e^{-|x|})^2`` (the same number: ``sigma'`` is even), which never
    overflows and keeps full relative accuracy in the tails, where ``1 - sigma(x)`` would cancel.

    Args:
        x: Vector of shape ``(d,)``, any magnitude.

    Returns:
        ``sigma'(x)`` elementwise, shape ``(d,)``, in ``[0, 1/4]``.
    """
    x = _array(x, "x", 1)
    e = np.exp(-np.abs(x))
    return e / (1.0 + e) ** 2


def tanh_grad(x: np.ndarray) -> np.ndarray:
    """The derivative ``1 - tanh(x)^2`` of the hyperbolic tangent (3-1 b).

    Args:
        x: Vector of shape ``(d,)``.

    Returns:
        ``1 - tanh(x)^2`` elementwise, shape ``(d,)``, in ``[0, 1]``.
    """
    t = np.tanh(_array(x, "x", 1))
    return 1.0 - t * t


def relu_grad(x: np.ndarray) -> np.ndarray:
    """The derivative of ``relu(x) = max(x, 0)`` away from 0 (3-1 c).

    Args:
        x: Vector of shape ``(d,)`` with no entry exactly 0 (where relu has no derivative).

    Returns:
        ``1.0`` where ``x > 0`` and ``0.0`` where ``x < 0``, shape ``(d,)``.
    """
    x = _array(x, "x", 1)
    return (x > 0).astype(float)


# --- Exercise 3-2: a linear layer -------------------------------------------------------------


def linear_backward(
    X: np.ndarray, W: np.ndarray, b: np.ndarray, dY: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``Y = X W + b`` (3-2).

    Args:
        X: Inputs, shape ``(B, d)``.
        W: Weights, shape ``(d, k)``.
        b: Bias, shape ``(k,)``, added to every row; the gradients do not depend on its value.
        dY: The upstream gradient ``dL/dY``, shape ``(B, k)``.

    Returns:
        ``(dX, dW, db) = (dY W^T, X^T dY, sum of the rows of dY)``, shapes ``(B, d)``, ``(d, k)``,
        ``(k,)``.
    """
    X, W, dY = _array(X, "X", 2), _array(W, "W", 2), _array(dY, "dY", 2)
    b = _array(b, "b", 1)
    _require(X.shape[1] == W.shape[0], f"X has shape {X.shape} but W has shape {W.shape}")
    _require(b.shape == (W.shape[1],), f"b has shape {b.shape}, expected ({W.shape[1]},)")
    _require(dY.shape == (X.shape[0], W.shape[1]), f"dY has shape {dY.shape}, expected XW's")
    return dY @ W.T, X.T @ dY, dY.sum(axis=0)


# --- Exercise 3-3: softmax and cross-entropy over a batch -------------------------------------


def softmax_ce_batch_grad(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Gradient of the mean cross-entropy ``L = (1/B) sum_b -sum_k Y_bk log softmax(Z_b)_k`` (3-3).

    Args:
        Z: Logits, shape ``(B, N)``, any magnitude.
        Y: Targets, shape ``(B, N)``, each row non-negative and summing to 1.

    Returns:
        ``dL/dZ = (softmax(Z) - Y) / B``, shape ``(B, N)``; each row sums to 0.
    """
    Z, Y = _array(Z, "Z", 2), _array(Y, "Y", 2)
    _require(Y.shape == Z.shape, f"Y has shape {Y.shape} but Z has shape {Z.shape}")
    return (softmax(Z) - Y) / Z.shape[0]


# --- Exercise 3-4: a two-layer network -----------------------------------------------------------


def mlp_backward(
    X: np.ndarray,
    Y: np.ndarray,
    W1: np.ndarray,
    b1: np.ndarray,
    W2: np.ndarray,
    b2: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``H = relu(X W1 + b1)``, ``Z = H W2 + b2`` and the loss of 3-3 (3-4).

    Args:
        X: Inputs, shape ``(B, d)``.
        Y: Targets, shape ``(B, N)``, rows non-negative and summing to 1.
        W1: First-layer weights, shape ``(d, h)``.
        b1: First-layer bias, shape ``(h,)``.
        W2: Second-layer weights, shape ``(h, N)``.
        b2: Second-layer bias, shape ``(N,)``.

    Returns:
        ``(dW1, db1, dW2, db2)``, each with the shape of its parameter.
    """
    X, Y = _array(X, "X", 2), _array(Y, "Y", 2)
    W1, W2 = _array(W1, "W1", 2), _array(W2, "W2", 2)
    b1, b2 = _array(b1, "b1", 1), _array(b2, "b2", 1)
    A = X @ W1 + b1  # pre-activations, (B, h)
    H = relu(A)
    Z = H @ W2 + b2  # logits, (B, N)
    dZ = softmax_ce_batch_grad(Z, Y)
    dH, dW2, db2 = linear_backward(H, W2, b2, dZ)
    dA = dH * relu_grad(A.ravel()).reshape(A.shape)
    _, dW1, db1 = linear_backward(X, W1, b1, dA)
    return dW1, db1, dW2, db2


# --- the closed forms in sympy (proven against the spec's forward maps by the generic tests) ----


def _sympy():
    import sympy as sp

    return sp


def _sym_sigmoid(t):
    return 1 / (1 + _sympy().exp(-t))


def _sym_softmax_rows(Z):
    sp = _sympy()
    P = sp.zeros(Z.rows, Z.cols)
    for n in range(Z.rows):
        total = sum(sp.exp(Z[n, m]) for m in range(Z.cols))
        for k in range(Z.cols):
            P[n, k] = sp.exp(Z[n, k]) / total
    return P


def _closed_softmax_ce_batch_grad(Z, Y):
    # (softmax(Z) - Y) / B uses that every row of Y sums to 1; for free symbols Y the gradient
    # is (rowsum(Y) * softmax(Z) - Y) / B, which is what is proven.
    sp = _sympy()
    rowsums = sp.diag(*[sum(Y.row(n)) for n in range(Y.rows)])
    return (rowsums * _sym_softmax_rows(Z) - Y) / Z.rows


def _closed_linear_backward(X, W, b, dY):
    sp = _sympy()
    return dY * W.T, X.T * dY, dY.T * sp.ones(dY.rows, 1)


def _closed_mlp_backward(X, Y, W1, b1, W2, b2):
    sp = _sympy()
    ones = sp.ones(X.rows, 1)
    A = X * W1 + ones * b1.T
    H = A.applyfunc(lambda a: sp.Max(a, 0))
    G = _closed_softmax_ce_batch_grad(H * W2 + ones * b2.T, Y)
    GA = (G * W2.T).multiply_elementwise(A.applyfunc(sp.Heaviside))
    return X.T * GA, GA.T * ones, H.T * G, G.T * ones


CLOSED_FORMS = {
    "sigmoid_grad": lambda x: x.applyfunc(lambda t: _sym_sigmoid(t) * (1 - _sym_sigmoid(t))),
    "tanh_grad": lambda x: x.applyfunc(lambda t: 1 - _sympy().tanh(t) ** 2),
    "relu_grad": lambda x: x.applyfunc(_sympy().Heaviside),
    "linear_backward": _closed_linear_backward,
    "softmax_ce_batch_grad": _closed_softmax_ce_batch_grad,
    "mlp_backward": _closed_mlp_backward,
}
"""Function -> its closed form in sympy, from the spec's inputs (arrays as sympy matrices, a
vector as a column; a tuple for a tuple-valued function); see derivations.md."""
