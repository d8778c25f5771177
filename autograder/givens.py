"""What the evaluator shares with the checks, without any of the checks.

The judge's evaluator imports this module and nothing of ``autograder.checks`` (the values it may
hand to student code come from the pack's own ``givens.py``), so the checks are not in the memory
the student's code runs in. The checks import it too, so both sides agree.
"""

from __future__ import annotations

import ast
import dis
import inspect
import textwrap
from collections.abc import Callable
from types import CodeType

SEED_ENV = "MATH_PRIMER_STUDENT"
"""Environment variable holding the student id; the kit's grading engines set it."""


_DOES_NOTHING = {"RESUME", "NOP", "RETURN_GENERATOR", "POP_TOP", "RETURN_VALUE", "RETURN_CONST"}
"""The instructions a body of ``...``, ``pass`` or a docstring compiles to, besides loading None
(an ``async def`` starts a coroutine first)."""


def _may_do_nothing(code: CodeType) -> bool:
    """Whether a function's bytecode could be that of an empty body: no instruction but those
    of :data:`_DOES_NOTHING` and loading None (stops at the first other one)."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in _DOES_NOTHING:
            if instruction.opname == "RETURN_CONST" and instruction.argval is not None:
                return False
        elif not (instruction.opname == "LOAD_CONST" and instruction.argval is None):
            return False
    return True


def is_placeholder(fn: Callable) -> bool:
    """Whether a function's body is still the template's ``...`` (or ``pass``).

    A function whose bytecode does more than return None is not one, whatever its source says,
    so only the rare function that does nothing has its source read and parsed.
    """
    code = getattr(fn, "__code__", None)
    if isinstance(code, CodeType) and not _may_do_nothing(code):
        return False
    return source_is_placeholder(fn)


def source_is_placeholder(fn: Callable) -> bool:
    """:func:`is_placeholder` from the function's source alone (its body is ``...``, ``pass`` or
    a docstring)."""
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
