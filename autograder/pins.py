"""The kit's pinned runtime dependencies, read from their one source.

The pins live in the repository's ``requirements.txt`` (which ``pyproject.toml`` reads as the
package's ``dependencies``). From a source checkout that file is read; in an installed wheel, the
same pins are read back from the package's metadata.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from packaging.requirements import Requirement

from .errors import KitError

DISTRIBUTION = "math-primer-autograder"
"""The kit's distribution name (``[project] name`` in ``pyproject.toml``)."""
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
"""The pin file of a source checkout."""


def _lines() -> list[str]:
    if REQUIREMENTS.is_file():
        text = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
        return [line.split("#", 1)[0].strip() for line in text]
    try:
        return list(importlib.metadata.requires(DISTRIBUTION) or [])
    except importlib.metadata.PackageNotFoundError:
        raise KitError(
            f"no {REQUIREMENTS} and no installed {DISTRIBUTION}: install the kit with `pip install .`"
        ) from None


def runtime_pins() -> dict[str, Requirement]:
    """Canonical package name -> its pinned requirement (extras-only requirements left out)."""
    pins: dict[str, Requirement] = {}
    for line in _lines():
        if not line:
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        pins[requirement.name.lower().replace("_", "-")] = requirement
    return pins


def pinned(*names: str) -> str:
    """The pins of ``names`` as ``requirements.txt`` lines (``"numpy==2.4.6\\n..."``).

    Raises:
        KitError: a name is not among the kit's runtime pins.
    """
    pins = runtime_pins()
    lines = []
    for name in names:
        requirement = pins.get(name.lower().replace("_", "-"))
        if requirement is None:
            raise KitError(f"{name} is not pinned in {REQUIREMENTS.name}")
        lines.append(f"{requirement.name}{requirement.specifier}\n")
    return "".join(lines)
