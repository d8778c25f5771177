"""Tests that the checks library and the sample catalogue agree with the contract.

The contract (``autograder/contract.py``) fixes question names, points, function names and the tag
vocabulary; the checks' ``CASES`` and ``TARGETS`` and the samples' ``MISTAKES`` must match it.
"""

from __future__ import annotations

import math

import pytest

from autograder import contract, samples
from autograder.checks import CASES, TARGETS
from autograder.checks.runner import SPECIAL_CASE_TAGS, STRUCTURAL_TAGS
from autograder.checks.tags import hint

QUESTIONS = list(contract.QUESTION_NAMES)


def test_cases_cover_exactly_the_contract_questions() -> None:
    """Are CASES keys exactly the contract's question names, in order?"""
    assert tuple(CASES) == contract.QUESTION_NAMES


def test_targets_cover_exactly_the_contract_questions() -> None:
    """Are TARGETS keys exactly the contract's question names?"""
    assert tuple(TARGETS) == contract.QUESTION_NAMES


@pytest.mark.parametrize("question", QUESTIONS)
def test_case_points_sum_to_question_points(question: str) -> None:
    """Do a question's case points add up to its points in the contract?"""
    assert math.isclose(sum(CASES[question].values()), contract.BY_NAME[question].points)
    assert all(points > 0 for points in CASES[question].values())


@pytest.mark.parametrize("question", QUESTIONS)
def test_target_functions_match_contract(question: str) -> None:
    """Are the checked function names (in order) the contract's function names?"""
    assert tuple(t.function for t in TARGETS[question]) == contract.BY_NAME[question].functions


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_question_has_a_typical_case(question: str) -> None:
    """Does every question have the baseline `typical` case the runner re-checks against?"""
    assert "typical" in CASES[question]


def test_total_points() -> None:
    """Is the assignment worth 12 points, in the contract and in CASES?"""
    assert contract.TOTAL_POINTS == 12
    assert math.isclose(sum(sum(c.values()) for c in CASES.values()), contract.TOTAL_POINTS)


@pytest.mark.parametrize("mistake", samples.MISTAKES, ids=lambda m: f"{m[0]}-{m[1]}")
def test_mistake_tags_are_in_the_vocabulary(mistake: tuple[str, str, str]) -> None:
    """Is every tag a catalogued mistake expects part of the contract's tag vocabulary, and is
    its question a contract question?"""
    question, tag, _ = mistake
    assert question in contract.QUESTION_NAMES
    assert tag in contract.TAGS


def test_runner_tags_are_in_the_vocabulary() -> None:
    """Are the runner's structural and special-case tags part of the vocabulary?"""
    assert STRUCTURAL_TAGS <= set(contract.TAGS)
    assert set(SPECIAL_CASE_TAGS.values()) <= set(contract.TAGS)


@pytest.mark.parametrize("tag", list(contract.TAGS))
def test_every_tag_has_a_hint(tag: str) -> None:
    """Does every tag come with a non-empty hint for students?"""
    assert contract.TAGS[tag].strip()
    assert hint((tag,)) == contract.TAGS[tag]


def test_samples_cover_the_contract() -> None:
    """Do the sample answers name only contract questions, with a correct answer for each?"""
    assert set(samples.CORRECT) == set(contract.QUESTION_NAMES)
    assert set(samples.EQUIVALENT) <= set(contract.QUESTION_NAMES)


def test_gradebook_columns() -> None:
    """Does the gradebook start with student, list the questions, and end with total, percent,
    status?"""
    columns = contract.GRADEBOOK_COLUMNS
    assert columns[0] == "student"
    assert columns[-3:] == ("total", "percent", "status")
    assert columns[1:-3] == contract.QUESTION_NAMES
    assert len(set(columns)) == len(columns)
