"""The comparison engine: structure first, then values, then a diagnosis of what went wrong.

Every question's check is a thin wrapper around :func:`compare`. It is pure: arrays in, a frozen
:class:`Outcome` out. Tolerances are explicit and scale with the *reference*, never the answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

_max = np.maximum.reduce
_all = np.logical_and.reduce
_any = np.logical_or.reduce
_sum = np.add.reduce
"""The reductions themselves (``np.max``, ``np.all``, ``np.any``, ``np.sum`` without their Python
wrappers)."""


@dataclass(frozen=True)
class Tolerance:
    """An explicit tolerance: ``|got - expected| <= rtol * max(max|expected|, floor)``."""

    rtol: float
    """Relative tolerance, applied to the reference's largest entry (its infinity norm)."""
    floor: float = 1.0
    """The smallest reference scale used, so an all-zero reference still has a tolerance."""

    def bound(self, expected: np.ndarray) -> float:
        """The absolute error allowed for this reference."""
        scale = float(_max(abs(expected), axis=None)) if expected.size else 0.0
        return self.rtol * max(scale, self.floor)

    def describe(self, expected: np.ndarray) -> str:
        """The rule in words, with the numbers filled in."""
        return (
            f"tolerance: |got - expected| <= {self.rtol:g} * max(max|expected|, {self.floor:g})"
            f" = {self.bound(expected):.3g}"
        )


@dataclass(frozen=True)
class Outcome:
    """What one comparison found."""

    passed: bool
    """Whether the answer is accepted."""
    tags: tuple[str, ...] = ()
    """Diagnosis tags from the pack's vocabulary (``Pack.vocabulary``)."""
    message: str = ""
    """What was got and what was expected, in the students' terms."""


PASS = Outcome(True)


def to_array(got: object, *, label: str) -> tuple[np.ndarray, None] | tuple[None, Outcome]:
    """Turn an answer into a float64 array, or explain why it is not a numeric array."""
    if got is None:
        return None, Outcome(False, ("wrong_type",), f"{label} returned None; expected an array")
    if got is Ellipsis:
        return None, Outcome(False, ("missing",), f"{label} still returns `...`")
    described = None if isinstance(got, np.ndarray) else getattr(got, "type_name", None)
    if isinstance(described, str) or isinstance(got, (str, bytes, dict, set)) or callable(got):
        kind = described if isinstance(described, str) else type(got).__name__
        return None, Outcome(
            False, ("wrong_type",), f"{label} returned a {kind}; expected an array"
        )
    if type(got) is np.ndarray and got.dtype == np.float64:
        return got.copy(), None  # the common case: what the checks below would give
    try:
        arr = np.asarray(got)
        if np.iscomplexobj(arr):
            raise TypeError("complex values")
        if arr.dtype == bool:
            raise TypeError("boolean values")
        if arr.dtype.kind not in "iufO":  # text, bytes, datetimes, records: not numbers
            raise TypeError(f"{arr.dtype} values")
        arr = np.array(arr, dtype=np.float64)  # also converts sympy numbers and np.matrix
    except (TypeError, ValueError) as exc:
        kind = type(got).__name__
        return None, Outcome(
            False, ("wrong_type",), f"{label} returned a {kind} that is not a real array ({exc})"
        )
    return arr, None


def _close(got: np.ndarray, expected: np.ndarray, bound: float) -> bool:
    return got.shape == expected.shape and bool(_all(abs(got - expected) <= bound, axis=None))


def _generic_diagnoses(got: np.ndarray, expected: np.ndarray, bound: float) -> tuple[str, ...]:
    """Tags for the mistakes any matrix or vector answer can make."""
    if expected.ndim == 2 and not _close(expected.T, expected, bound):
        if _close(got, expected.T, bound):
            return ("transposed",)
    if got.shape != expected.shape:
        return ()
    if _any(np.abs(expected) > bound, axis=None) and _close(-got, expected, bound):
        return ("sign_flipped",)
    denom = float(_sum(expected * expected, axis=None))
    if denom > 0:
        c = float(_sum(got * expected, axis=None)) / denom
        if abs(c - 1) > 1e-3 and abs(c) > 1e-3 and _close(got, c * expected, bound * abs(c)):
            return ("scaled",)
    if expected.ndim == 2 and expected.shape[0] == expected.shape[1] > 1:
        diag = np.diag(np.diag(expected))
        if not _close(diag, expected, bound) and _close(got, diag, bound):
            return ("diag_only",)
    return ()


def _mismatch_report(got: np.ndarray, expected: np.ndarray, bound: float) -> str:
    diff = np.abs(got - expected)
    bad = diff > bound
    n_bad = int(np.count_nonzero(bad)) if got.size else 0
    idx = (
        tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        if diff.size
        else ()
    )
    rel = (
        float(diff.max() / max(float(_max(np.abs(expected), axis=None)), 1e-300))
        if diff.size
        else 0.0
    )
    where = f" at index {idx}" if idx else ""
    return (
        f"mismatched elements: {n_bad} / {got.size} ({100 * n_bad / max(got.size, 1):.0f}%); "
        f"largest difference{where}: got {got[idx]:.6g}, expected {expected[idx]:.6g} "
        f"(max abs diff {diff.max():.3g}, relative to max|expected| {rel:.3g})"
    )


def _known(
    arr: np.ndarray, alternatives: Mapping[str, np.ndarray] | None, bound: float
) -> tuple[str, ...]:
    """The tags of the known wrong answers ``arr`` matches (only asked of a wrong answer)."""
    return tuple(
        tag for tag, alt in (alternatives or {}).items() if _close(arr, np.asarray(alt), bound)
    )


def compare(
    got: object,
    expected: np.ndarray,
    *,
    tol: Tolerance,
    label: str,
    shape_hint: str = "",
    alternatives: Mapping[str, np.ndarray] | None = None,
) -> Outcome:
    """Compare an answer with the reference: structure first, then values, then a diagnosis.

    Args:
        got: what the student's function returned.
        expected: the oracle's reference array.
        tol: the explicit tolerance, scaled by the reference.
        label: how to name the answer in messages, e.g. ``"`f` on W of shape (3, 5)"``.
        shape_hint: one sentence explaining the expected shape in the students' terms.
        alternatives: known wrong answers by tag (e.g. ``{"missing_diag": fprime}``); an answer
            matching one of them gets that tag.

    Returns:
        The outcome: passed, tags and a message saying what was got and what was expected.
    """
    converted = to_array(got, label=label)
    if converted[1] is not None:
        return converted[1]
    arr = converted[0]
    bound = tol.bound(expected)
    finite_bound = math.isfinite(bound)
    if arr.shape != expected.shape:
        known = _known(arr, alternatives, bound)
        tags = ("wrong_shape", *known, *_generic_diagnoses(arr, expected, bound))
        hint = f"; {shape_hint}" if shape_hint else ""
        return Outcome(
            False, tags, f"{label} has shape {arr.shape}, expected shape {expected.shape}{hint}"
        )
    if finite_bound and _close(arr, expected, bound):
        return PASS  # within a finite bound of the reference: finite, and right
    if not np.isfinite(arr).all():
        n_bad = int(np.count_nonzero(~np.isfinite(arr)))
        return Outcome(
            False, ("not_finite",), f"{label} contains {n_bad} NaN or inf value(s) of {arr.size}"
        )
    if not finite_bound and _close(arr, expected, bound):
        return PASS
    tags = (
        _known(arr, alternatives, bound)
        or _generic_diagnoses(arr, expected, bound)
        or ("wrong_value",)
    )
    report = _mismatch_report(arr, expected, bound)
    return Outcome(False, tags, f"{label} is wrong: {report}; {tol.describe(expected)}")
