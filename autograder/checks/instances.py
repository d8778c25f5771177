"""Random problem instances: a generator seeded per student, question and case, and samplers.

A regrade of the same student draws the same instances; two students draw different ones. The
samplers are building blocks for the packs' ``draw`` functions.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..givens import SEED_ENV


def seed_key() -> str:
    """The per-student key of the current grading run ("" when no engine set one)."""
    return os.environ.get(SEED_ENV, "")


def rng_for(question: str, case: str, *, key: str, salt: str) -> np.random.Generator:
    """A generator seeded reproducibly from the pack's salt, the student key, the question and
    the case."""
    digest = hashlib.sha256(f"{salt}|{key}|{question}|{case}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


SIGNS = np.array([-1.0, 1.0])
"""The signs random entries take."""


def signs(rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
    """Random signs, each -1.0 or 1.0 with probability one half: ``rng.choice([-1.0, 1.0],
    size)``, the same numbers from the same stream (that is how ``choice`` picks from two values
    with replacement), without its overhead."""
    return SIGNS[rng.integers(0, 2, size)]


def matrix(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """A random (n, d) matrix with entries of order one, kept away from zero and from symmetry."""
    return rng.uniform(0.5, 2.0, (n, d)) * signs(rng, (n, d))


def vector(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random vector with entries of order one, kept away from zero."""
    return rng.uniform(0.5, 2.0, d) * signs(rng, d)


def logits(rng: np.random.Generator, size: int, *, large: bool, sign: float = 1.0) -> np.ndarray:
    """Logits of order one, or around ``sign * 1000`` (a naive softmax overflows on them)."""
    z = rng.normal(0.0, 2.0, size)
    return z + sign * 1000.0 if large else z


def soft_labels(rng: np.random.Generator, size: int, *, hard: bool) -> np.ndarray:
    """A target vector: one-hot when ``hard``, else a random probability vector."""
    if hard:
        return np.eye(size)[rng.integers(size)]
    return rng.dirichlet(np.ones(size))


def design(rng: np.random.Generator, n: int, d: int, *, condition: float) -> np.ndarray:
    """A full-column-rank (n, d) design matrix with the given condition number (n >= d)."""
    u, _ = np.linalg.qr(rng.standard_normal((n, d)))
    v, _ = np.linalg.qr(rng.standard_normal((d, d)))
    singular = np.logspace(0.0, -np.log10(condition), d) if d > 1 else np.ones(1)
    return 3.0 * (u * singular) @ v.T
