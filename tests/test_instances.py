"""Tests for the samplers of ``autograder.checks.instances``: the random streams they draw from.

A regrade must draw the instances a first grading drew, so a sampler may be made cheaper only if
it takes the same numbers from the generator.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import instances as inst


@pytest.mark.parametrize("size", [1, 4, (1, 1), (3, 5), (30, 6)])
def test_signs_are_what_choice_drew(size: int | tuple[int, ...]) -> None:
    """Does signs() give the -1.0/1.0 array rng.choice([-1.0, 1.0], size) gave for the same seed,
    and leave the generator where choice left it?"""
    for seed in range(200):
        mine, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        got, want = inst.signs(mine, size), theirs.choice([-1.0, 1.0], size)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)
        assert mine.uniform() == theirs.uniform()


def test_matrix_and_vector_draw_the_first_release_numbers() -> None:
    """Are matrix() and vector() the product of uniform magnitudes and choice's signs, drawn in
    that order from one generator?"""
    mine, theirs = np.random.default_rng(7), np.random.default_rng(7)
    W, x = inst.matrix(mine, 3, 5), inst.vector(mine, 5)
    want_W = theirs.uniform(0.5, 2.0, (3, 5)) * theirs.choice([-1.0, 1.0], (3, 5))
    want_x = theirs.uniform(0.5, 2.0, 5) * theirs.choice([-1.0, 1.0], 5)
    assert W.tobytes() == want_W.tobytes() and x.tobytes() == want_x.tobytes()
