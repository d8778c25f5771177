"""Numerical differentiation and the forward maps shared by several sheets.

The reference of a derivative question is mathematics, not a stored answer:
:mod:`autograder.pack.derive` differentiates a pack's declared forward map with
:func:`fd_jacobian` (central differences in float64) and, for small instances, exactly with sympy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Vector = np.ndarray
_max = np.maximum.reduce
_sum = np.add.reduce
"""``np.max`` and ``np.sum`` without their Python wrappers (the same reductions)."""


def fd_jacobian(f: Callable[[Vector], Vector], x: Vector, *, h: float = 1e-5) -> np.ndarray:
    """Central finite-difference Jacobian of ``f`` at ``x``: shape ``(len(f(x)), len(x))``.

    The step is absolute: the maps used here have curvature of order one whatever the size of
    their inputs (softmax is shift-invariant), so a relative step would only lose accuracy.
    """
    x = np.asarray(x, dtype=np.float64)
    # The points x + h e_j and x - h e_j, bit for bit: off j, x + 0.0 (which turns -0.0 into
    # 0.0) and x - 0.0 (which is x); at j, x_j + h and x_j - h. Cheaper than adding a basis vector.
    above, below = x + 0.0, x - 0.0
    steps = (x + h, x - h)
    if x.ndim == 1 and x.size:
        # All the points at once, one per row (f gets a fresh copy of row j of each, as below),
        # f at x + h e_j before f at x - h e_j; then the differences of every column in one
        # subtraction and one division: the same operations on the same numbers.
        n = x.size
        rows = np.arange(n)
        ups, downs = np.repeat(above[None, :], n, axis=0), np.repeat(below[None, :], n, axis=0)
        ups[rows, rows], downs[rows, rows] = steps
        above_values, below_values = [], []
        for j in range(n):
            above_values.append(f(ups[j].copy()))
            below_values.append(f(downs[j].copy()))
        jac = _columns(above_values, below_values, h)
        if jac is not None:
            return jac
    columns = []
    for j in range(x.size):
        plus, minus = above.copy(), below.copy()
        plus[j], minus[j] = steps[0][j], steps[1][j]
        columns.append((np.atleast_1d(f(plus)) - np.atleast_1d(f(minus))) / (2 * h))
    return np.stack(columns, axis=1)


def _columns(plus: list, minus: list, h: float) -> np.ndarray | None:
    """The Jacobian from the values of ``f`` above and below each coordinate, when they are
    distinct float64 arrays of one shape with at most one axis; else None (then the caller
    evaluates ``f`` again, one column at a time)."""
    values = plus + minus
    shape = plus[0].shape if type(plus[0]) is np.ndarray else None
    for value in values:
        if type(value) is not np.ndarray or value.dtype != np.float64 or value.shape != shape:
            return None
    if (
        shape is None
        or len(shape) > 1
        or not plus[0].size
        or len(set(map(id, values))) < len(values)
    ):
        return None  # a map that hands out one buffer each time: its values are gone
    size = plus[0].size
    differences = (np.array(plus).reshape(-1, size) - np.array(minus).reshape(-1, size)) / (2 * h)
    return np.ascontiguousarray(differences.T)


def fd_gradient(f: Callable[[Vector], float], x: Vector, *, h: float = 1e-5) -> Vector:
    """Central finite-difference gradient of a scalar function."""
    return fd_jacobian(lambda v: np.array([f(v)]), x, h=h)[0]


def softmax(z: Vector) -> Vector:
    """Numerically stable softmax of a 1-D array."""
    e = np.exp(z - _max(z, axis=None))
    return e / _sum(e, axis=None)


def log_softmax(z: Vector) -> Vector:
    """Numerically stable log-softmax of a 1-D array."""
    shifted = z - _max(z, axis=None)
    return shifted - np.log(_sum(np.exp(shifted), axis=None))


def cross_entropy(z: Vector, y: Vector) -> float:
    """Cross-entropy ``-sum(y * log softmax(z))`` of logits ``z`` against targets ``y``."""
    return float(-_sum(y * log_softmax(z), axis=None))
