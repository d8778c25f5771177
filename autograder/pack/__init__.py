"""Assignment packs: the declarations of a sheet (``spec``), and the kit's reading of them.

``assignments/<name>/spec.py`` imports what it needs from here::

    from autograder.pack import Case, Computed, Derivative, Misconception, Pack, Question, edge

The machinery (build, engines, gradebook, ...) gets a pack with :func:`load`.
"""

from ..checks.compare import Outcome, Tolerance
from .registry import available, current, default_name, find, givens_file, load, load_path, names
from .spec import (
    DEFAULT_TOLERANCE,
    Advice,
    Case,
    Computed,
    Derivative,
    Instance,
    Misconception,
    Pack,
    Question,
    Target,
    edge,
    large,
    typical,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "Advice",
    "Case",
    "Computed",
    "Derivative",
    "Instance",
    "Misconception",
    "Outcome",
    "Pack",
    "Question",
    "Target",
    "Tolerance",
    "available",
    "current",
    "default_name",
    "edge",
    "find",
    "givens_file",
    "large",
    "load",
    "load_path",
    "names",
    "typical",
]
