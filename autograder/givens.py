"""What student code is given or judged by, without any of the checks.

The judge's evaluator imports this module and nothing of ``autograder.checks``, so the checks
are not in the memory the student's code runs in. The checks import it too, so both sides agree.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable

import numpy as np

SEED_ENV = "MATH_PRIMER_STUDENT"
"""Environment variable holding the student id; the kit's grading engines set it."""

DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": np.cos,
    "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
    "cube": lambda x: 3.0 * x**2,
    "softplus": lambda x: 0.5 * (1.0 + np.tanh(x / 2)),
}
"""The f' handed to ``jacobian_elementwise(f_prime, x)``, by the name of f."""


def is_placeholder(fn: Callable) -> bool:
    """Whether a function's body is still the template's ``...`` (or ``pass``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    func = tree.body[0] if tree.body else None
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            body = body[1:]
    return all(
        isinstance(s, ast.Pass)
        or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and s.value.value is ...)
        for s in body
    )
