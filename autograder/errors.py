"""The kit's exceptions share one base class, so the CLI turns every expected failure into a
one-line ``error:`` (and exit code 2) instead of a traceback.

Modules define their own subclasses (``BuildError``, ``GradingError``, ...) next to the code that
raises them; this module holds the base and the errors of the assignment packs.
"""

from __future__ import annotations


class KitError(Exception):
    """An expected failure with a message for the user (a TA or an instructor): bad input, a
    missing file, a pack that does not declare what it must. Never a student's fault."""


class SpecError(KitError):
    """An assignment pack's spec is inconsistent (e.g. case points that do not add up to the
    question's points); the message names the pack, the question and the bad value."""


class PackNotFound(KitError):
    """No pack of that name, or a pack cannot be chosen (e.g. a mixed folder of submissions)."""


class MasterDrift(KitError):
    """The master notebook disagrees with its pack's spec (questions, points, test cells)."""


class JudgeFault(KitError):
    """The grader, not the student, could not do its part (e.g. an argument the judge is not
    allowed to send to student code): the submission becomes an ``error`` row."""
