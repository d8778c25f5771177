"""What the evaluator shares with the checks, without any of the checks.

The judge's evaluator imports this module and nothing of ``autograder.checks`` (the values it may
hand to student code come from the pack's own ``givens.py``), so the checks are not in the memory
the student's code runs in. The checks import it too, so both sides agree.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable

SEED_ENV = "MATH_PRIMER_STUDENT"
"""Environment variable holding the student id; the kit's grading engines set it."""


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
