"""The generic vocabulary of diagnosis tags, each with a hint in the students' terms.

A pack's full vocabulary (:attr:`autograder.pack.spec.Pack.vocabulary`) is ``GENERIC_TAGS``, the
pack's own tags, ``CASE_TAGS`` and ``FALLBACK_TAGS``, in that order.
"""

from __future__ import annotations

from collections.abc import Mapping

STRUCTURAL_TAGS: dict[str, str] = {
    "missing": "Define the function in its answer cell and replace the template's `...` with code.",
    "exception": "Your function raised an error on these inputs; run it on arrays of the shapes "
    "given above.",
    "timeout": "Your function did not finish in time; look for a loop that never ends.",
    "wrong_type": "Return a NumPy array of numbers (did you forget `return`?).",
    "wrong_shape": "Check the shape you return against the shape asked for in the question.",
    "not_finite": "Your answer contains NaN or inf values.",
}
"""Tags about the form of an answer (the public checks report these)."""

VALUE_TAGS: dict[str, str] = {
    "transposed": "Your answer is the transpose of the expected matrix: (J)_ij = dz_i/dx_j has one "
    "row per output and one column per input.",
    "missing_diag": "You returned the vector f'(x); the Jacobian of an elementwise map is the "
    "matrix diag(f'(x)).",
    "diag_only": "The diagonal is right, but the off-diagonal entries (i != j) are missing.",
    "sign_flipped": "Your answer has the wrong sign.",
    "scaled": "Your answer is a constant multiple of the expected one; check constant factors.",
}
"""Generic value mistakes, recognised from the reference alone."""

GENERIC_TAGS: dict[str, str] = {**STRUCTURAL_TAGS, **VALUE_TAGS}

CASE_TAGS: dict[str, str] = {
    "not_stable": "Right on moderate logits but not on logits of size ~1000: use a numerically "
    "stable softmax (subtract max(z) before exp).",
    "edge_case": "Right on typical sizes but not when a dimension is 1: avoid np.squeeze and code "
    "that assumes more than one row or column.",
}
"""Diagnoses of a case that fails while the baseline passes (see ``Case.diagnosis``)."""

FALLBACK_TAGS: dict[str, str] = {
    "wrong_value": "The values differ from the expected answer; check your derivation.",
}
"""The tag of a wrong answer that matches no known mistake."""

_LAST = ("wrong_shape", "wrong_value")


def hint(tags: tuple[str, ...], vocabulary: Mapping[str, str] | None = None) -> str:
    """The hint of the most specific tag (the generic structural ones come last).

    Args:
        tags: the tags of one failed case.
        vocabulary: tag -> hint (a pack's :attr:`~autograder.pack.spec.Pack.vocabulary`); by
            default the generic tags only.
    """
    vocabulary = vocabulary or {**GENERIC_TAGS, **CASE_TAGS, **FALLBACK_TAGS}
    ordered = [t for t in tags if t not in _LAST] + [t for t in tags if t in _LAST]
    return vocabulary.get(ordered[0], "") if ordered else ""
