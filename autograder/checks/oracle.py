"""The oracle is mathematics, not stored answers.

Reference Jacobians come from central finite differences in float64 of the forward maps below and,
for small sizes, from sympy's exact differentiation of the same maps (see :func:`exact_jacobian`).
Each forward map is written once for numpy and once for sympy, side by side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..givens import DERIVATIVES

Vector = np.ndarray
ElementwiseFn = tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]

# Elementwise functions for q1c: (name, f, f'). Their sympy twins are looked up by name.
ELEMENTWISE: tuple[ElementwiseFn, ...] = (
    ("sin", np.sin, DERIVATIVES["sin"]),
    ("tanh", np.tanh, DERIVATIVES["tanh"]),
    ("cube", lambda x: x**3, DERIVATIVES["cube"]),
    ("softplus", lambda x: np.logaddexp(0.0, x), DERIVATIVES["softplus"]),
)


def fd_jacobian(f: Callable[[Vector], Vector], x: Vector, *, h: float = 1e-5) -> np.ndarray:
    """Central finite-difference Jacobian of ``f`` at ``x``: shape ``(len(f(x)), len(x))``.

    The step is absolute: the maps used here have curvature of order one whatever the size of
    their inputs (softmax is shift-invariant), so a relative step would only lose accuracy.
    """
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        columns.append((np.atleast_1d(f(x + e)) - np.atleast_1d(f(x - e))) / (2 * h))
    return np.stack(columns, axis=1)


def fd_gradient(f: Callable[[Vector], float], x: Vector, *, h: float = 1e-5) -> Vector:
    """Central finite-difference gradient of a scalar function."""
    return fd_jacobian(lambda v: np.array([f(v)]), x, h=h)[0]


# --- forward maps, numpy -------------------------------------------------------------------------


def softmax(z: Vector) -> Vector:
    """Numerically stable softmax."""
    e = np.exp(z - np.max(z))
    return e / e.sum()


def log_softmax(z: Vector) -> Vector:
    """Numerically stable log-softmax."""
    shifted = z - np.max(z)
    return shifted - np.log(np.sum(np.exp(shifted)))


def cross_entropy(z: Vector, y: Vector) -> float:
    """Cross-entropy ``-sum(y * log softmax(z))`` of logits ``z`` against targets ``y``."""
    return float(-np.sum(y * log_softmax(z)))


def smooth_loss(z: Vector, c: Vector) -> float:
    """A smooth scalar loss of ``z`` for q1d: ``sum_k c_k log cosh z_k + z_k / 2``."""
    return float(np.sum(c * (np.logaddexp(z, -z) - np.log(2.0)) + 0.5 * z))


def mse(w: Vector, X: np.ndarray, y: Vector) -> float:
    """Mean squared error of ``Xw`` against ``y``."""
    r = X @ w - y
    return float(r @ r / len(y))


def mse_minimizer(X: np.ndarray, y: Vector) -> Vector:
    """The minimiser of the MSE by an SVD least-squares solve (stable for ill-conditioned X)."""
    return np.linalg.lstsq(X, y, rcond=None)[0]


# --- the same maps, sympy -------------------------------------------------------------------------


def _sympy_elementwise(name: str):
    import sympy as sp

    return {
        "sin": sp.sin,
        "tanh": sp.tanh,
        "cube": lambda t: t**3,
        "softplus": lambda t: sp.log(1 + sp.exp(t)),
    }[name]


def _symbolic_jacobian(kind: str, size: int, key: tuple):
    """The exact Jacobian of a forward map, compiled to numpy once per kind and shape.

    The map's parameters (W, x, c, y) are symbols too, so one compiled function serves every
    instance of that shape: ``f(at, *params) -> (m, size) array``.
    """
    import sympy as sp

    v = list(sp.symbols(f"v0:{size}"))
    params: list[list] = []
    if kind == "linear":
        n, d = key
        W = sp.Matrix(n, d, sp.symbols(f"w0:{n * d}"))
        outputs, params = list(W * sp.Matrix(v)), [list(W)]
    elif kind == "elementwise":
        f = _sympy_elementwise(key[0])
        outputs = [f(t) for t in v]
    elif kind == "loss_of_W":
        n, d = key
        x, c = list(sp.symbols(f"x0:{d}")), list(sp.symbols(f"c0:{n}"))
        z = [sum(v[i * d + j] * x[j] for j in range(d)) for i in range(n)]
        outputs = [sum(c[i] * sp.log(sp.cosh(z[i])) + z[i] / 2 for i in range(n))]
        params = [x, c]
    elif kind == "softmax":
        total = sum(sp.exp(t) for t in v)
        outputs = [sp.exp(t) / total for t in v]
    elif kind == "cross_entropy":
        y = list(sp.symbols(f"y0:{size}"))
        total = sum(sp.exp(t) for t in v)
        outputs = [-sum(y[k] * sp.log(sp.exp(v[k]) / total) for k in range(size))]
        params = [y]
    else:
        raise ValueError(f"unknown forward map {kind!r}")
    return sp.lambdify([v, *params], sp.Matrix(outputs).jacobian(v), modules="numpy")


_COMPILED: dict[tuple, Callable] = {}


def exact_jacobian(kind: str, at: Vector, **params: object) -> np.ndarray:
    """Exact Jacobian of a forward map by sympy, evaluated at ``at`` (for small sizes only).

    Params by kind: ``linear``: W; ``elementwise``: name; ``loss_of_W``: x, c, n;
    ``softmax``: none; ``cross_entropy``: y.
    """
    at = np.asarray(at, dtype=np.float64)
    args: list[np.ndarray] = []
    if kind == "linear":
        W = np.asarray(params["W"], dtype=np.float64)
        key, args = W.shape, [W.ravel()]
    elif kind == "elementwise":
        key = (str(params["name"]),)
    elif kind == "loss_of_W":
        x, c = np.asarray(params["x"], dtype=np.float64), np.asarray(params["c"], dtype=np.float64)
        key, args = (int(params["n"]), x.size), [x, c]
    elif kind == "cross_entropy":
        key, args = (), [np.asarray(params["y"], dtype=np.float64)]
    else:
        key = ()
    if kind in ("softmax", "cross_entropy"):
        at = at - np.max(at)  # both maps are shift-invariant; this keeps exp() from overflowing
    cache_key = (kind, at.size, tuple(key))
    if cache_key not in _COMPILED:
        _COMPILED[cache_key] = _symbolic_jacobian(kind, at.size, tuple(key))
    jac = np.array(_COMPILED[cache_key](at, *args), dtype=np.float64)
    return jac.reshape(-1, at.size)
