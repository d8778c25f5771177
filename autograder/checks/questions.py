"""One thin check per question: draw instances, ask the oracle, call the student, compare.

Each question is split into cases worth a share of its points (partial credit per case, see
``CASES``); a case passes only if every instance in it passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import instances as inst
from . import oracle
from .compare import Outcome, Tolerance, compare

CASES: dict[str, dict[str, float]] = {
    "q1a": {"typical": 0.75, "edge": 0.25},
    "q1b": {"typical": 0.75, "edge": 0.25},
    "q1c": {"typical": 0.75, "edge": 0.25},
    "q1d": {"typical": 1.5, "edge": 0.5},
    "q2a": {"typical": 1.0, "large": 0.5, "edge": 0.5},
    "q2b": {"typical": 1.0, "large": 0.5, "edge": 0.5},
    "q3": {"typical": 2.0, "ill_conditioned": 0.5, "edge": 0.5},
}
"""Points of each hidden case, per question. The master notebook's test configs use these."""

BASELINE_CASE = "typical"
"""A failing edge or large case is diagnosed by re-checking the first instance of this case."""

JACOBIAN_TOL = Tolerance(rtol=1e-6)
"""Finite differences are accurate to ~1e-10 here; 1e-6 leaves room for any correct formula."""
LSQ_DISTANCE_RTOL = 1e-3
"""q3: distance to the oracle's minimiser, relative to its norm (inv at condition 1e6: ~1e-5)."""
LSQ_RESIDUAL_RTOL = 1e-9
"""q3: ||X^T(Xw - y)|| / (||X|| (||X|| ||w*|| + ||y||)) (inv at condition 1e6: ~1e-11)."""


@dataclass(frozen=True)
class Instance:
    """One random problem: inputs for the student's function and the oracle's answer."""

    args: tuple
    """Positional arguments for the student's function (copied before each call)."""
    expected: np.ndarray
    """The oracle's reference answer."""
    what: str
    """The inputs in words, for messages (shapes, not values)."""
    alternatives: dict[str, np.ndarray] = field(default_factory=dict)
    """Known wrong answers by diagnosis tag."""


@dataclass(frozen=True)
class Target:
    """One student function of a question and how its answers are judged."""

    function: str
    """The function's name in the notebook."""
    draw: Callable[[np.random.Generator, str], list[Instance]]
    """Instances for a case."""
    shape_hint: str
    """The expected shape, in the students' terms."""
    judge: Callable[[object, Instance, str], Outcome] | None = None
    """A custom comparison; by default :func:`compare` with ``JACOBIAN_TOL``."""

    def check(self, answer: object, instance: Instance, label: str) -> Outcome:
        """Judge one answer to one instance."""
        if self.judge is not None:
            return self.judge(answer, instance, label)
        return compare(
            answer,
            instance.expected,
            tol=JACOBIAN_TOL,
            label=label,
            shape_hint=self.shape_hint,
            alternatives=instance.alternatives,
        )


def _shapes(*arrays: np.ndarray, names: str) -> str:
    return ", ".join(f"{n} of shape {a.shape}" for n, a in zip(names.split(), arrays))


def _small(*arrays: np.ndarray) -> bool:
    return max(a.size for a in arrays) <= 4


# --- 2-1 Jacobians ----------------------------------------------------------------------------


def _draw_linear(rng: np.random.Generator, case: str) -> list[Instance]:
    out = []
    for n, d in inst.LINEAR_SIZES.get(case, inst.LINEAR_SIZES["typical"]):
        W, x = inst.matrix(rng, n, d), inst.vector(rng, d)
        if _small(W, x):
            J = oracle.exact_jacobian("linear", x, W=W)
        else:
            J = oracle.fd_jacobian(lambda v, W=W: W @ v, x)
        out.append(Instance((W, x), J, _shapes(W, x, names="W x")))
    return out


def _draw_elementwise(rng: np.random.Generator, case: str) -> list[Instance]:
    out = []
    for _, d in inst.LINEAR_SIZES.get(case, inst.LINEAR_SIZES["typical"]):
        name, f, fprime = oracle.ELEMENTWISE[int(rng.integers(len(oracle.ELEMENTWISE)))]
        x = inst.vector(rng, d)
        if _small(x):
            J = oracle.exact_jacobian("elementwise", x, name=name)
        else:
            J = oracle.fd_jacobian(f, x)
        out.append(Instance((fprime, x), J, f"x of shape {x.shape}", {"missing_diag": fprime(x)}))
    return out


def _draw_dL_dW(rng: np.random.Generator, case: str) -> list[Instance]:
    out = []
    for n, d in inst.LINEAR_SIZES.get(case, inst.LINEAR_SIZES["typical"]):
        W, x, c = inst.matrix(rng, n, d), inst.vector(rng, d), rng.uniform(0.5, 2.0, n)
        delta = oracle.fd_gradient(lambda z, c=c: oracle.smooth_loss(z, c), W @ x)
        loss_of_W = lambda w, x=x, c=c, n=n: oracle.smooth_loss(w.reshape(n, -1) @ x, c)
        if _small(W, x):
            grad = oracle.exact_jacobian("loss_of_W", W.ravel(), x=x, c=c, n=n)[0]
        else:
            grad = oracle.fd_gradient(loss_of_W, W.ravel())
        out.append(Instance((delta, x), grad.reshape(n, d), _shapes(delta, x, names="dL_dz x")))
    return out


# --- 2-2 softmax and cross-entropy -------------------------------------------------------------


def _logit_draws(rng: np.random.Generator, case: str) -> list[np.ndarray]:
    sizes = inst.SOFTMAX_SIZES.get(case, inst.SOFTMAX_SIZES["typical"])
    signs = [1.0, -1.0] * len(sizes)
    return [inst.logits(rng, N, large=case == "large", sign=s) for N, s in zip(sizes, signs)]


def _softmax_jacobian(z: np.ndarray) -> np.ndarray:
    if _small(z) and np.max(np.abs(z)) < 50:
        return oracle.exact_jacobian("softmax", z)
    return oracle.fd_jacobian(oracle.softmax, z)


def _draw_softmax_diag(rng: np.random.Generator, case: str) -> list[Instance]:
    return [
        Instance((z,), np.diag(_softmax_jacobian(z)).copy(), f"z of shape {z.shape}")
        for z in _logit_draws(rng, case)
    ]


def _draw_softmax_jacobian(rng: np.random.Generator, case: str) -> list[Instance]:
    return [
        Instance((z,), _softmax_jacobian(z), f"z of shape {z.shape}")
        for z in _logit_draws(rng, case)
    ]


def _draw_cross_entropy(rng: np.random.Generator, case: str) -> list[Instance]:
    out = []
    for i, z in enumerate(_logit_draws(rng, case)):
        y = inst.soft_labels(rng, z.size, hard=i % 2 == 1)
        if _small(z) and np.max(np.abs(z)) < 50:
            grad = oracle.exact_jacobian("cross_entropy", z, y=y)[0]
        else:
            grad = oracle.fd_gradient(lambda v, y=y: oracle.cross_entropy(v, y), z)
        yhat = oracle.softmax(z)
        alternatives = {}
        if np.all(yhat > 1e-12):
            alternatives["dL_dyhat"] = -y / yhat
        labels = "one-hot" if i % 2 == 1 else "soft"
        out.append(
            Instance((z, y), grad, f"z of shape {z.shape} and {labels} labels y", alternatives)
        )
    return out


# --- 2-3 mean squared error --------------------------------------------------------------------


def _draw_lsq(rng: np.random.Generator, case: str) -> list[Instance]:
    out = []
    condition = inst.LSQ_CONDITION.get(case, inst.LSQ_CONDITION["typical"])
    for n, d in inst.LSQ_SIZES.get(case, inst.LSQ_SIZES["typical"]):
        X = inst.design(rng, n, d, condition=condition)
        y = rng.standard_normal(n)
        what = (
            f"X of shape {X.shape} (condition number {np.linalg.cond(X):.1e}), y of shape {y.shape}"
        )
        out.append(Instance((X, y), oracle.mse_minimizer(X, y), what))
    return out


def judge_lsq(answer: object, instance: Instance, label: str) -> Outcome:
    """q3: the answer must minimise the MSE: small optimality residual and close to the oracle."""
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


TARGETS: dict[str, tuple[Target, ...]] = {
    "q1a": (
        Target(
            "jacobian_Wx",
            _draw_linear,
            "J_z = dz/dx has one row per output z_i and one column per input x_j, so shape (n, d)",
        ),
    ),
    "q1b": (
        Target(
            "jacobian_xT_WT",
            _draw_linear,
            "J_z = dz/dx has one row per output z_i and one column per input x_j, so shape (n, d)",
        ),
    ),
    "q1c": (
        Target(
            "jacobian_elementwise",
            _draw_elementwise,
            "the Jacobian of a map from R^d to R^d is a (d, d) matrix, not a vector",
        ),
    ),
    "q1d": (Target("dL_dW", _draw_dL_dW, "dL/dW has the shape of W: (n, d)"),),
    "q2a": (
        Target(
            "softmax_diag_derivative", _draw_softmax_diag, "one entry dy_i/dz_i per class: (N,)"
        ),
        Target("softmax_jacobian", _draw_softmax_jacobian, "the full Jacobian dy/dz is (N, N)"),
    ),
    "q2b": (
        Target("cross_entropy_grad", _draw_cross_entropy, "dL/dz has one entry per logit: (N,)"),
    ),
    "q3": (Target("mse_minimizer", _draw_lsq, "w has one entry per column of X: (d,)", judge_lsq),),
}
"""The student functions of each question, in the order the test cells pass them."""
