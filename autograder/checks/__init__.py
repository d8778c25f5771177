"""Numeric checks of the answers: comparison engine, instances, oracle, runner.

Shipped next to the student notebook and inside the Otter autograder zip with the assignment's
pack; depends on numpy only (sympy is imported lazily for the exact references of small
instances). What is checked is declared by the pack (``autograder.pack``).
"""

from .compare import Outcome, Tolerance, compare
from .runner import CaseResult, CheckFailed, assert_case, assert_form, check_form, run_case

__all__ = [
    "CaseResult",
    "CheckFailed",
    "Outcome",
    "Tolerance",
    "assert_case",
    "assert_form",
    "check_form",
    "compare",
    "run_case",
]
