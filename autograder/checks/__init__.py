"""Numeric checks of the math-primer answers: oracle, instances, comparison engine, runner.

Shipped next to the student notebook and inside the Otter autograder zip; depends on numpy only
(sympy is imported lazily for the exact Jacobians of small instances).
"""

from .compare import Outcome, Tolerance, compare
from .questions import CASES, TARGETS
from .runner import CaseResult, CheckFailed, assert_case, assert_form, check_form, run_case

__all__ = [
    "CASES",
    "TARGETS",
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
