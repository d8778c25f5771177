"""Numerical differentiation and the forward maps shared by several sheets.

The reference of a derivative question is mathematics, not a stored answer:
:mod:`autograder.pack.derive` differentiates a pack's declared forward map with
:func:`fd_jacobian` (central differences in float64) and, for small instances, exactly with sympy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Vector = np.ndarray


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
    columns = []
    for j in range(x.size):
        plus, minus = above.copy(), below.copy()
        plus[j], minus[j] = steps[0][j], steps[1][j]
        columns.append((np.atleast_1d(f(plus)) - np.atleast_1d(f(minus))) / (2 * h))
    return np.stack(columns, axis=1)


def fd_gradient(f: Callable[[Vector], float], x: Vector, *, h: float = 1e-5) -> Vector:
    """Central finite-difference gradient of a scalar function."""
    return fd_jacobian(lambda v: np.array([f(v)]), x, h=h)[0]


def softmax(z: Vector) -> Vector:
    """Numerically stable softmax of a 1-D array."""
    e = np.exp(z - np.max(z))
    return e / e.sum()


def log_softmax(z: Vector) -> Vector:
    """Numerically stable log-softmax of a 1-D array."""
    shifted = z - np.max(z)
    return shifted - np.log(np.sum(np.exp(shifted)))


def cross_entropy(z: Vector, y: Vector) -> float:
    """Cross-entropy ``-sum(y * log softmax(z))`` of logits ``z`` against targets ``y``."""
    return float(-np.sum(y * log_softmax(z)))
