"""Exercise 2: Math Primer, as an assignment pack.

Jacobians (2-1), softmax and cross-entropy (2-2) are declared by their forward maps: the kit
derives the references, shapes and generic misconceptions. The least-squares minimiser (2-3) is
not a derivative: its reference is an SVD solve and its judge checks the optimality residual.

The instance sizes and random sequences are those of the sheet's first release, so a regrade
draws the same instances as before.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import instances as inst
from autograder.checks.compare import Outcome, Tolerance, compare
from autograder.checks.oracle import cross_entropy, fd_gradient, softmax
from autograder.pack import (
    Advice,
    Case,
    Computed,
    Derivative,
    Instance,
    Misconception,
    Pack,
    Question,
    edge,
    large,
    typical,
)

from .givens import GIVENS

# --- sizes and samplers ------------------------------------------------------------------------

LINEAR = {"typical": ((3, 5), (4, 4), (5, 2)), "edge": ((1, 4), (3, 1), (1, 1))}
"""(n, d) of W for 2-1 (the elementwise map of 2-1 c uses d only)."""
CLASSES = {"typical": (3, 5, 10), "large": (4, 6), "edge": (1,)}
"""N, the number of classes, for 2-2."""


def linear_cases(typical_points: float, edge_points: float) -> tuple[Case, ...]:
    return (typical(typical_points, LINEAR["typical"]), edge(edge_points, LINEAR["edge"]))


SOFTMAX_CASES = (
    typical(1.0, CLASSES["typical"]),
    large(0.5, CLASSES["large"]),
    edge(0.5, CLASSES["edge"]),
)


def draw_linear(rng, size):
    n, d = size
    return {"W": inst.matrix(rng, n, d), "x": inst.vector(rng, d)}


def draw_logits(rng, size, case, index):
    """Logits of one instance; in the large case around +1000 and -1000 in turn."""
    sign = 1.0 if index % 2 == 0 else -1.0
    return {"z": inst.logits(rng, size, large=bool(case.params.get("large")), sign=sign)}


def small_logits(z) -> bool:
    """Exact sympy only below |z| = 50, where exp in its compiled form cannot overflow."""
    return bool(np.max(np.abs(z)) < 50)


# --- 2-1 c: elementwise functions f (the judge hands out f' from givens.py) --------------------

ELEMENTWISE = ("sin", "tanh", "cube", "softplus")
NUMPY_F = {
    "sin": np.sin,
    "tanh": np.tanh,
    "cube": lambda x: x**3,
    "softplus": lambda x: np.logaddexp(0.0, x),
}


def sympy_f(name):
    """The elementwise f in sympy (imported lazily: the student's public checks never need it)."""
    import sympy as sp

    return {
        "sin": sp.sin,
        "tanh": sp.tanh,
        "cube": lambda t: t**3,
        "softplus": lambda t: sp.log(1 + sp.exp(t)),
    }[name]


def draw_elementwise(rng, size):
    _, d = size
    name = ELEMENTWISE[int(rng.integers(len(ELEMENTWISE)))]
    return {"f": name, "x": inst.vector(rng, d)}


# --- 2-1 d: a smooth loss of z = Wx ------------------------------------------------------------


def smooth_loss(z, c):
    """``sum_k c_k log cosh z_k + z_k / 2``: any smooth loss does; the student gets dL/dz.

    (``np.add.reduce`` is what ``np.sum`` calls: the finite differences evaluate this often.)"""
    return float(np.add.reduce(c * (np.logaddexp(z, -z) - np.log(2.0)) + 0.5 * z, axis=None))


def smooth_loss_sympy(W, x, c):
    import sympy as sp

    z = W * x
    return sum(c[i] * sp.log(sp.cosh(z[i])) + z[i] / 2 for i in range(W.rows))


def draw_loss_of_W(rng, size):
    n, d = size
    return {"W": inst.matrix(rng, n, d), "x": inst.vector(rng, d), "c": rng.uniform(0.5, 2.0, n)}


# --- 2-2: softmax and cross-entropy --------------------------------------------------------------


def softmax_sympy(z):
    import sympy as sp

    e = z.applyfunc(sp.exp)
    return e / sum(e)


def cross_entropy_sympy(z, y):
    import sympy as sp

    total = sum(sp.exp(t) for t in z)
    return -sum(y[k] * sp.log(sp.exp(z[k]) / total) for k in range(len(z)))


def draw_cross_entropy(rng, case):
    """All logits of the case first, then the labels: soft and one-hot in turn."""
    logits = [draw_logits(rng, N, case, i)["z"] for i, N in enumerate(case.sizes)]
    hard = [i % 2 == 1 for i in range(len(logits))]
    return [
        {"z": z, "y": inst.soft_labels(rng, z.size, hard=h), "hard": h}
        for z, h in zip(logits, hard)
    ]


def dL_dyhat(z, y):
    """The mistake of stopping the chain rule at yhat: -y / yhat (where yhat has no zeros)."""
    yhat = softmax(z)
    return -y / yhat if np.all(yhat > 1e-12) else None


# --- 2-3: the least-squares minimiser --------------------------------------------------------

LSQ_DISTANCE_RTOL = 1e-3
"""Distance to the oracle's minimiser, relative to its norm (inv at condition 1e6: ~1e-5)."""
LSQ_RESIDUAL_RTOL = 1e-9
"""||X^T(Xw - y)|| / (||X|| (||X|| ||w*|| + ||y||)) (inv at condition 1e6: ~1e-11)."""


def draw_lsq(rng, size, case):
    n, d = size
    X = inst.design(rng, n, d, condition=float(case.params["condition"]))
    return {"X": X, "y": rng.standard_normal(n)}


def describe_lsq(X, y):
    return f"X of shape {X.shape} (condition number {np.linalg.cond(X):.1e}), y of shape {y.shape}"


def judge_lsq(answer: object, instance: Instance, label: str) -> Outcome:
    """The answer must minimise the MSE: close to the oracle and a small optimality residual."""
    X, y = instance.args
    w_star = instance.expected
    scale = max(float(np.linalg.norm(w_star)), 1e-12)
    outcome = compare(
        answer,
        w_star,
        tol=Tolerance(rtol=LSQ_DISTANCE_RTOL, floor=1e-12),
        label=label,
        shape_hint="w has one entry per feature (column of X)",
    )
    if not outcome.passed:
        return outcome
    w = np.asarray(answer, dtype=np.float64)
    norm_x = float(np.linalg.norm(X, 2))
    residual = float(np.linalg.norm(X.T @ (X @ w - y)))
    relative = residual / (norm_x * (norm_x * scale + float(np.linalg.norm(y))))
    if relative <= LSQ_RESIDUAL_RTOL:
        return outcome
    return Outcome(
        False,
        ("wrong_value",),
        f"{label} is close to the minimiser but the gradient of the MSE does not vanish: "
        f"relative optimality residual ||X^T(Xw - y)|| = {relative:.2e}, "
        f"tolerance {LSQ_RESIDUAL_RTOL:g}",
    )


# --- the sheet ---------------------------------------------------------------------------------

DERIVATION_POINTS = 0
"""Manual points of each question's "Your derivation" cell, marked by a TA in the review app.
0 (the default): the cells are handed out, the derivations are shown to TAs, and the grade is
the 12 autograded points. Set it to e.g. 1 to add 1 manual point to each of the 7 questions
(total 19); nothing else changes (no rebuild of the master, no change to the notebook)."""

JACOBIAN_SHAPE = (
    "J_z = dz/dx has one row per output z_i and one column per input x_j, so shape (n, d)"
)

PACK = Pack(
    name="math_primer",
    title="Math Primer",
    salt="math-primer-2026",
    givens=GIVENS,
    questions=(
        Question(
            id="q1a",
            sheet="2-1 a",
            points=1,
            derivation=True,
            derivation_points=DERIVATION_POINTS,
            cases=linear_cases(0.75, 0.25),
            functions=(
                Derivative(
                    name="jacobian_Wx",
                    params=("W", "x"),
                    draw=draw_linear,
                    forward=lambda W, x: W @ x,
                    sympy=lambda W, x: W * x,
                    wrt="x",
                    shape_hint=JACOBIAN_SHAPE,
                ),
            ),
        ),
        Question(
            id="q1b",
            sheet="2-1 b",
            points=1,
            derivation=True,
            derivation_points=DERIVATION_POINTS,
            cases=linear_cases(0.75, 0.25),
            functions=(
                Derivative(
                    name="jacobian_xT_WT",
                    params=("W", "x"),
                    draw=draw_linear,
                    forward=lambda W, x: x @ W.T,
                    sympy=lambda W, x: (x.T * W.T).T,
                    wrt="x",
                    shape_hint=JACOBIAN_SHAPE,
                ),
            ),
        ),
        Question(
            id="q1c",
            sheet="2-1 c",
            points=1,
            derivation=True,
            derivation_points=DERIVATION_POINTS,
            cases=linear_cases(0.75, 0.25),
            functions=(
                Derivative(
                    name="jacobian_elementwise",
                    params=("f_prime", "x"),
                    draw=draw_elementwise,
                    args=lambda f, x: (GIVENS[f], x),
                    forward=lambda f, x: NUMPY_F[f](x),
                    sympy=lambda f, x: x.applyfunc(sympy_f(f)),
                    wrt="x",
                    shape_hint="the Jacobian of a map from R^d to R^d is a (d, d) matrix, not a "
                    "vector",
                ),
            ),
        ),
        Question(
            id="q1d",
            sheet="2-1 d",
            points=2,
            derivation=True,
            derivation_points=DERIVATION_POINTS,
            cases=linear_cases(1.5, 0.5),
            functions=(
                Derivative(
                    name="dL_dW",
                    params=("dL_dz", "x"),
                    draw=draw_loss_of_W,
                    args=lambda W, x, c: (fd_gradient(lambda z: smooth_loss(z, c), W @ x), x),
                    forward=lambda W, x, c: smooth_loss(W @ x, c),
                    sympy=smooth_loss_sympy,
                    wrt="W",
                    shape_hint="dL/dW has the shape of W: (n, d)",
                ),
            ),
        ),
        Question(
            id="q2a",
            sheet="2-2 a",
            points=2,
            derivation=True,
            derivation_points=DERIVATION_POINTS,
            cases=SOFTMAX_CASES,
            functions=(
                Derivative(
                    name="softmax_diag_derivative",
                    params=("z",),
                    draw=draw_logits,
                    forward=softmax,
                    sympy=softmax_sympy,
                    exact_if=small_logits,
                    wrt="z",
                    part="diagonal",
                    shape_hint="one entry dy_i/dz_i per class: (N,)",
                ),
                Derivative(
                    name="softmax_jacobian",
                    params=("z",),
                    draw=draw_logits,
                    forward=softmax,
                    sympy=softmax_sympy,
                    exact_if=small_logits,
                    wrt="z",
                    shape_hint="the full Jacobian dy/dz is (N, N)",
                ),
            ),
        ),
        Question(
            id="q2b",
            sheet="2-2 b",
            points=2,
            derivation=True,
            derivation_points=DERIVATION_POINTS,
            cases=SOFTMAX_CASES,
            functions=(
                Derivative(
                    name="cross_entropy_grad",
                    params=("z", "y"),
                    draw_case=draw_cross_entropy,
                    describe=lambda z, hard: (
                        f"z of shape {z.shape} and {'one-hot' if hard else 'soft'} labels y"
                    ),
                    forward=cross_entropy,
                    sympy=cross_entropy_sympy,
                    exact_if=small_logits,
                    wrt="z",
                    shape_hint="dL/dz has one entry per logit: (N,)",
                    misconceptions=(
                        Misconception(
                            tag="dL_dyhat",
                            answer=dL_dyhat,
                            hint="You returned dL/dy-hat = -y / y-hat; the question asks for "
                            "dL/dz: apply the chain rule through the softmax.",
                        ),
                    ),
                ),
            ),
        ),
        Question(
            id="q3",
            sheet="2-3",
            points=3,
            derivation=True,
            derivation_points=DERIVATION_POINTS,
            cases=(
                typical(2.0, ((8, 3), (20, 5), (4, 4)), condition=10.0),
                Case(
                    name="ill_conditioned",
                    points=0.5,
                    sizes=((12, 4), (30, 6)),
                    params={"condition": 1e6},
                ),
                edge(0.5, ((1, 1), (5, 1)), condition=10.0),
            ),
            functions=(
                Computed(
                    name="mse_minimizer",
                    params=("X", "y"),
                    draw=draw_lsq,
                    describe=describe_lsq,
                    solve=lambda X, y: np.linalg.lstsq(X, y, rcond=None)[0],
                    judge=judge_lsq,
                    shape_hint="w has one entry per column of X: (d,)",
                ),
            ),
            advice=(
                Advice(
                    pattern=r"\binv\s*\(",
                    note="Advice (no deduction): your answer forms an explicit inverse. "
                    "np.linalg.solve(X.T @ X, X.T @ y), or better np.linalg.lstsq(X, y), is more "
                    "accurate: forming X^T X squares the condition number.",
                ),
            ),
        ),
    ),
)
