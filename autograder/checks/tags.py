"""The fixed vocabulary of diagnosis tags, each with a hint in the students' terms."""

from __future__ import annotations

TAGS: dict[str, str] = {
    "missing": "Define the function in its answer cell and replace the template's `...` with code.",
    "exception": "Your function raised an error on these inputs; run it on arrays of the shapes "
    "given above.",
    "timeout": "Your function did not finish in time; look for a loop that never ends.",
    "wrong_type": "Return a NumPy array of numbers (did you forget `return`?).",
    "wrong_shape": "Check the shape you return against the shape asked for in the question.",
    "not_finite": "Your answer contains NaN or inf values.",
    "transposed": "Your answer is the transpose of the expected matrix: (J)_ij = dz_i/dx_j has one "
    "row per output and one column per input.",
    "missing_diag": "You returned the vector f'(x); the Jacobian of an elementwise map is the "
    "matrix diag(f'(x)).",
    "diag_only": "The diagonal is right, but the off-diagonal entries (i != j) are missing.",
    "sign_flipped": "Your answer has the wrong sign.",
    "scaled": "Your answer is a constant multiple of the expected one; check constant factors.",
    "dL_dyhat": "You returned dL/dy-hat = -y / y-hat; the question asks for dL/dz: apply the chain "
    "rule through the softmax.",
    "not_stable": "Right on moderate logits but not on logits of size ~1000: use a numerically "
    "stable softmax (subtract max(z) before exp).",
    "edge_case": "Right on typical sizes but not when a dimension is 1: avoid np.squeeze and code "
    "that assumes more than one row or column.",
    "wrong_value": "The values differ from the expected answer; check your derivation.",
}
"""Tag -> hint. Tags are written to the results; hints go into the students' feedback."""


def hint(tags: tuple[str, ...]) -> str:
    """The hint of the most specific tag (the generic structural ones come last)."""
    generic = ("wrong_shape", "wrong_value")
    ordered = [t for t in tags if t not in generic] + [t for t in tags if t in generic]
    return TAGS.get(ordered[0], "") if ordered else ""
