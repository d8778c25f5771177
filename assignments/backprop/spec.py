"""Exercise 3: Backpropagation, as an assignment pack.

Every question is a derivative declared by its forward map; the kit derives the references
(central finite differences, exact sympy on the smallest instances), the shapes and the generic
misconceptions. What is specific to this sheet:

- 3-1 asks for elementwise derivatives (the diagonal of the activation's Jacobian); the sigmoid's
  ``large`` case mixes moderate inputs with inputs of magnitude ~1000, where the textbook formula
  ``e^-x / (1 + e^-x)^2`` gives NaN (``not_stable``, explained by the sigmoid's judge); relu's
  judge accepts the boolean mask ``x > 0`` as its 0/1 values;
- 3-2 is a vector-Jacobian product (``upstream="dY"``) with three parts worth 1 point each;
- 3-3 recognises ``dL_dyhat`` (the gradient stopped at the probabilities) by a small judge, since
  students write it with and without the batch's ``1/B``;
- 3-4's instances keep every pre-activation at least ``KINK_MARGIN`` away from the ReLU kink (so
  finite differences see a smooth map) with active and inactive units in every instance, and
  recognise ``missing_relu_mask`` on the hidden layer's gradients.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from autograder.checks.compare import Outcome, compare
from autograder.errors import SpecError
from autograder.pack import (
    DEFAULT_TOLERANCE,
    Case,
    Derivative,
    Instance,
    Misconception,
    Pack,
    Question,
    edge,
    large,
    typical,
)

# --- forward maps, NumPy -------------------------------------------------------------------------


def sigmoid(x):
    """The logistic sigmoid, written through tanh so that it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax_rows(Z):
    """Row-wise stable softmax (the notebook's given helper)."""
    E = np.exp(Z - np.max(Z, axis=-1, keepdims=True))
    return E / np.sum(E, axis=-1, keepdims=True)


def mean_cross_entropy(Z, Y):
    """``(1/B) sum_n -sum_k Y_nk log softmax(Z_n)_k``, with a stable log-softmax."""
    shifted = Z - np.max(Z, axis=1, keepdims=True)
    log_p = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return float(-np.sum(Y * log_p) / Z.shape[0])


def network_loss(X, Y, W1, b1, W2, b2):
    """The two-layer network of 3-4 and its mean cross-entropy."""
    return mean_cross_entropy(np.maximum(X @ W1 + b1, 0.0) @ W2 + b2, Y)


# --- the same maps, sympy (imported lazily: the public checks never need it) ---------------------


def sigmoid_sympy(x):
    import sympy as sp

    return x.applyfunc(lambda t: 1 / (1 + sp.exp(-t)))


def tanh_sympy(x):
    import sympy as sp

    return x.applyfunc(sp.tanh)


def relu_sympy(x):
    import sympy as sp

    return x.applyfunc(lambda t: sp.Max(t, 0))


def linear_sympy(X, W, b):
    import sympy as sp

    return X * W + sp.ones(X.rows, 1) * b.T


def mean_cross_entropy_sympy(Z, Y):
    import sympy as sp

    loss = 0
    for n in range(Z.rows):
        total = sum(sp.exp(Z[n, m]) for m in range(Z.cols))
        loss -= sum(Y[n, k] * sp.log(sp.exp(Z[n, k]) / total) for k in range(Z.cols))
    return loss / Z.rows


def network_loss_sympy(X, Y, W1, b1, W2, b2):
    import sympy as sp

    H = (X * W1 + sp.ones(X.rows, 1) * b1.T).applyfunc(lambda a: sp.Max(a, 0))
    return mean_cross_entropy_sympy(H * W2 + sp.ones(X.rows, 1) * b2.T, Y)


def moderate(**arrays) -> bool:
    """Exact sympy only below magnitude 50, where exp in its compiled form cannot overflow."""
    return all(np.max(np.abs(a)) < 50 for a in arrays.values() if isinstance(a, np.ndarray))


SYMPY_MAX_ACTIVATIONS = 12
"""The exact sympy derivative of a network is compiled only up to this many hidden activations
B * h (a (4, 3, 5, 3) network takes about a minute to compile; finite differences serve it)."""


def small_network(X, W1, **arrays) -> bool:
    """Exact sympy for moderate inputs of networks with few hidden activations."""
    return X.shape[0] * W1.shape[1] <= SYMPY_MAX_ACTIVATIONS and moderate(X=X, W1=W1, **arrays)


# --- samplers ------------------------------------------------------------------------------------

SIGMOID_LARGE = (750.0, 1000.0)
"""Magnitudes of the large entries in the sigmoid's ``large`` case (``exp(710)`` overflows)."""
RELU_MAGNITUDES = (0.1, 3.0)
"""|x| of relu_grad's inputs: never 0, and far from it compared with the finite-difference step."""
KINK_MARGIN = 0.1
"""Every pre-activation of 3-4 is at least this far from 0 (the step is 1e-5)."""
MAX_TRIES = 200
"""Draws of a network before giving up (a failure would be an author's error, not seen here)."""


def signs(rng, size):
    """Random signs with both present whenever ``size >= 2``."""
    s = rng.choice([-1.0, 1.0], size)
    if size >= 2 and abs(s.sum()) == size:
        s[int(rng.integers(size))] *= -1.0
    return s


def draw_activation(rng, size, case):
    """x for 3-1 a and b: moderate entries, or in the large case half of them of size ~1000."""
    x = rng.normal(0.0, 3.0, size)
    if case.params.get("large"):
        big = np.arange(size) % 2 == 0
        x[big] = rng.uniform(*SIGMOID_LARGE, int(big.sum())) * signs(rng, int(big.sum()))
        x = rng.permutation(x)
    return {"x": x}


def draw_relu(rng, size, index):
    """x for 3-1 c: no entry near 0; for d >= 3 at least two positive entries (of different
    sizes, so relu(x) is no multiple of the mask) and one negative, for d = 2 one of each, for
    d = 1 a positive entry in even and a negative one in odd instances."""
    if size == 1:
        s = np.array([1.0 if index % 2 == 0 else -1.0])
    else:
        fixed = [1.0, -1.0] if size == 2 else [1.0, 1.0, -1.0]
        s = rng.permutation(np.concatenate([fixed, rng.choice([-1.0, 1.0], size - len(fixed))]))
    return {"x": rng.uniform(*RELU_MAGNITUDES, size) * s}


def draw_layer(rng, size):
    B, d, k = size
    return {
        "X": rng.standard_normal((B, d)),
        "W": rng.standard_normal((d, k)),
        "b": rng.standard_normal(k),
        "dY": rng.standard_normal((B, k)),
    }


def targets(rng, B, N):
    """Target rows summing to 1: soft labels and one-hot labels in turn."""
    return np.array(
        [rng.dirichlet(np.ones(N)) if n % 2 == 0 else np.eye(N)[rng.integers(N)] for n in range(B)]
    )


def draw_batch(rng, size, case):
    """Z and Y for 3-3; in the large case each row is shifted by about +1000 or -1000."""
    B, N = size
    Z = rng.normal(0.0, 2.0, (B, N))
    if case.params.get("large"):
        Z = Z + 1000.0 * signs(rng, B)[:, None] + rng.uniform(-50.0, 50.0, (B, 1))
    return {"Z": Z, "Y": targets(rng, B, N)}


def describe_batch(Z, Y):
    return f"Z of shape {Z.shape} (|Z| up to {np.max(np.abs(Z)):.0f}), Y of shape {Y.shape}"


def draw_network(rng, size):
    """A network whose pre-activations A = X W1 + b1 keep |A| >= KINK_MARGIN, with active and
    inactive units (a single unit is active, so that a gradient flows through it)."""
    B, d, h, N = size
    for _ in range(MAX_TRIES):
        X, W1, b1 = rng.standard_normal((B, d)), rng.standard_normal((d, h)), rng.normal(0, 0.5, h)
        A = X @ W1 + b1
        if np.min(np.abs(A)) < KINK_MARGIN:
            continue
        active = A > 0
        if (A.size == 1 and active.all()) or (A.size > 1 and active.any() and not active.all()):
            break
    else:
        raise SpecError(f"backprop q4: no network of size {size} in {MAX_TRIES} draws")
    return {
        "X": X,
        "Y": targets(rng, B, N),
        "W1": W1,
        "b1": b1,
        "W2": rng.standard_normal((h, N)),
        "b2": rng.normal(0.0, 0.5, N),
    }


# --- pack-specific misconceptions ------------------------------------------------------------------

DL_DYHAT_HINT = (
    "You returned dL/dY-hat = -Y / (B Y-hat), the gradient with respect to the probabilities; the "
    "question asks for dL/dZ: apply the chain rule through the softmax of each row."
)
MASK_HINT = (
    "The hidden layer's gradients miss the ReLU: multiply dL/dH elementwise by relu'(A) = [A > 0] "
    "before the first layer's backward pass (dW2 and db2 are not affected)."
)


def dL_dyhat(Z, Y, *, mean: bool = True):
    """The gradient stopped at the probabilities, -Y / Y-hat (/ B for the mean loss), where no
    probability underflows."""
    P = softmax_rows(Z)
    if not np.all(P > 1e-12):
        return None
    return -Y / P / (Z.shape[0] if mean else 1)


def missing_mask(X, Y, W1, b1, W2, b2):
    """dW1 and db1 computed as if the hidden layer had no ReLU (dL/dA := dL/dH); a part is left
    out where it coincides with the right one (every unit active, or N = 1 where all gradients
    vanish), and the whole mistake where both parts do."""
    A = X @ W1 + b1
    H = np.maximum(A, 0.0)
    G = (softmax_rows(H @ W2 + b2) - Y) / X.shape[0]
    dH = G @ W2.T
    dA = dH * (A > 0)
    wrong = {"dW1": (X.T @ dH, X.T @ dA), "db1": (dH.sum(axis=0), dA.sum(axis=0))}
    parts = {
        part: unmasked
        for part, (unmasked, right) in wrong.items()
        if np.max(np.abs(unmasked - right)) > DEFAULT_TOLERANCE.bound(right)
    }
    return parts or None


ELEMENTWISE_SHAPE = "one slope f'(x_i) per entry of x, the shape of x: (d,)"
CE_SHAPE = "dL/dZ has the shape of Z: one row per sample, one column per class, (B, N)"


def judge_cross_entropy(answer: object, instance: Instance, label: str) -> Outcome:
    """The kit's comparison, which knows ``dL_dyhat`` with the 1/B; the same mistake without the
    1/B (the gradient of the summed loss) is recognised here as well."""
    outcome = compare(
        answer,
        instance.expected,
        tol=DEFAULT_TOLERANCE,
        label=label,
        shape_hint=CE_SHAPE,
        alternatives=instance.alternatives,
    )
    if outcome.passed or outcome.tags != ("wrong_value",):
        return outcome
    summed = dL_dyhat(**instance.inputs, mean=False)
    if summed is not None and compare(answer, summed, tol=DEFAULT_TOLERANCE, label=label).passed:
        return Outcome(False, ("dL_dyhat", "scaled"), outcome.message)
    return outcome


OVERFLOW_NOTE = (
    "; for |x| > 709, exp(-x) or exp(x) overflows to inf and inf / inf is NaN: compute sigma(x) "
    "first and use sigma (1 - sigma), or write sigma'(x) with exp(-|x|)"
)


def judge_sigmoid(answer: object, instance: Instance, label: str) -> Outcome:
    """sigmoid_grad: the kit's comparison; a NaN or inf answer on inputs of size ~1000 is
    explained in sigmoid terms (the generic ``not_stable`` hint speaks of the softmax)."""
    outcome = compare(
        answer,
        instance.expected,
        tol=DEFAULT_TOLERANCE,
        label=label,
        shape_hint=ELEMENTWISE_SHAPE,
        alternatives=instance.alternatives,
    )
    if "not_finite" in outcome.tags and np.max(np.abs(instance.inputs["x"])) > 709:
        return replace(outcome, message=outcome.message + OVERFLOW_NOTE)
    return outcome


def judge_mask(answer: object, instance: Instance, label: str) -> Outcome:
    """relu_grad: the kit's comparison, where a boolean mask counts as its 0/1 values (it
    multiplies an upstream gradient exactly as the floats do)."""
    if isinstance(answer, (np.ndarray, list, tuple)):
        try:
            values = np.asarray(answer)
        except ValueError:  # ragged: compare reports it
            values = None
        if values is not None and values.dtype == bool:
            answer = values.astype(np.float64)
    return compare(
        answer,
        instance.expected,
        tol=DEFAULT_TOLERANCE,
        label=label,
        shape_hint=ELEMENTWISE_SHAPE,
        alternatives=instance.alternatives,
    )


# --- the sheet -------------------------------------------------------------------------------------

VECTOR_SIZES = {"typical": (5, 8, 3), "large": (6, 10), "edge": (1,)}
"""d for 3-1."""
RELU_SIZES = {"typical": (5, 8, 3), "edge": (1, 1)}
"""d for 3-1 c: the edge case has a positive and a negative input."""
LAYER_SIZES = {
    "typical": ((4, 3, 2), (5, 2, 3), (3, 4, 4)),
    "edge": ((1, 3, 2), (4, 1, 3), (3, 2, 1), (1, 1, 1)),
}
"""(B, d, k) for 3-2."""
BATCH_SIZES = {
    "typical": ((4, 3), (6, 5), (3, 10)),
    "large": ((4, 6), (5, 3)),
    "edge": ((1, 4), (5, 1), (1, 1)),
}
"""(B, N) for 3-3."""
NETWORK_SIZES = {
    "typical": ((4, 3, 5, 3), (5, 2, 4, 4), (3, 4, 3, 2)),
    "edge": ((1, 3, 4, 2), (4, 1, 3, 2), (3, 2, 1, 3), (4, 3, 2, 1), (1, 1, 1, 1)),
}
"""(B, d, h, N) for 3-4."""


def per_part(parts: tuple[str, ...], sizes: dict, typical_points: float, edge_points: float):
    """A typical and an edge case for every part of a tuple-valued answer (points per part)."""
    cases = []
    for part in parts:
        cases.append(
            Case(
                name=f"{part}_typical", points=typical_points, sizes=sizes["typical"], parts=(part,)
            )
        )
    for part in parts:
        cases.append(
            Case(
                name=f"{part}_edge",
                points=edge_points,
                sizes=sizes["edge"],
                parts=(part,),
                diagnosis="edge_case",
            )
        )
    return tuple(cases)


LAYER_PARTS = ("dX", "dW", "db")
NETWORK_PARTS = ("dW1", "db1", "dW2", "db2")

PACK = Pack(
    name="backprop",
    title="Backpropagation",
    questions=(
        Question(
            id="q1a",
            sheet="3-1 a",
            points=1,
            cases=(
                typical(0.5, VECTOR_SIZES["typical"]),
                large(0.25, VECTOR_SIZES["large"]),
                edge(0.25, VECTOR_SIZES["edge"]),
            ),
            functions=(
                Derivative(
                    name="sigmoid_grad",
                    params=("x",),
                    draw=draw_activation,
                    forward=sigmoid,
                    sympy=sigmoid_sympy,
                    exact_if=moderate,
                    wrt="x",
                    part="diagonal",
                    judge=judge_sigmoid,
                    shape_hint=ELEMENTWISE_SHAPE,
                ),
            ),
        ),
        Question(
            id="q1b",
            sheet="3-1 b",
            points=1,
            cases=(typical(0.75, VECTOR_SIZES["typical"]), edge(0.25, VECTOR_SIZES["edge"])),
            functions=(
                Derivative(
                    name="tanh_grad",
                    params=("x",),
                    draw=draw_activation,
                    forward=lambda x: np.tanh(x),
                    sympy=tanh_sympy,
                    wrt="x",
                    part="diagonal",
                    shape_hint=ELEMENTWISE_SHAPE,
                ),
            ),
        ),
        Question(
            id="q1c",
            sheet="3-1 c",
            points=1,
            cases=(typical(0.75, RELU_SIZES["typical"]), edge(0.25, RELU_SIZES["edge"])),
            functions=(
                Derivative(
                    name="relu_grad",
                    params=("x",),
                    draw=draw_relu,
                    forward=lambda x: np.maximum(x, 0.0),
                    sympy=relu_sympy,
                    wrt="x",
                    part="diagonal",
                    judge=judge_mask,
                    shape_hint=ELEMENTWISE_SHAPE,
                ),
            ),
        ),
        Question(
            id="q2",
            sheet="3-2",
            points=3,
            cases=per_part(LAYER_PARTS, LAYER_SIZES, 0.75, 0.25),
            functions=(
                Derivative(
                    name="linear_backward",
                    params=("X", "W", "b", "dY"),
                    draw=draw_layer,
                    forward=lambda X, W, b: X @ W + b,
                    sympy=linear_sympy,
                    upstream="dY",
                    wrt=("X", "W", "b"),
                    returns=LAYER_PARTS,
                    shape_hint="each gradient has the shape of what it differentiates: "
                    "dX (B, d), dW (d, k), db (k,) (b is shared by all B samples)",
                ),
            ),
        ),
        Question(
            id="q3",
            sheet="3-3",
            points=2,
            cases=(
                typical(1.0, BATCH_SIZES["typical"]),
                large(0.5, BATCH_SIZES["large"]),
                edge(0.5, BATCH_SIZES["edge"]),
            ),
            functions=(
                Derivative(
                    name="softmax_ce_batch_grad",
                    params=("Z", "Y"),
                    draw=draw_batch,
                    describe=describe_batch,
                    forward=mean_cross_entropy,
                    sympy=mean_cross_entropy_sympy,
                    exact_if=moderate,
                    wrt="Z",
                    judge=judge_cross_entropy,
                    shape_hint=CE_SHAPE,
                    misconceptions=(
                        Misconception(tag="dL_dyhat", answer=dL_dyhat, hint=DL_DYHAT_HINT),
                    ),
                ),
            ),
        ),
        Question(
            id="q4",
            sheet="3-4",
            points=4,
            cases=per_part(NETWORK_PARTS, NETWORK_SIZES, 0.75, 0.25),
            functions=(
                Derivative(
                    name="mlp_backward",
                    params=("X", "Y", "W1", "b1", "W2", "b2"),
                    draw=draw_network,
                    forward=network_loss,
                    sympy=network_loss_sympy,
                    exact_if=small_network,
                    wrt=("W1", "b1", "W2", "b2"),
                    returns=NETWORK_PARTS,
                    shape_hint="each gradient has the shape of its parameter: "
                    "dW1 (d, h), db1 (h,), dW2 (h, N), db2 (N,)",
                    misconceptions=(
                        Misconception(tag="missing_relu_mask", answer=missing_mask, hint=MASK_HINT),
                    ),
                ),
            ),
        ),
    ),
)
