"""Find and load assignment packs.

A pack is a folder ``<name>/`` holding ``spec.py`` (defines ``PACK``), the Otter Assign master
``<name>.ipynb`` and, when the judge hands functions to student code, ``givens.py`` (defines
``GIVENS``). Packs are looked up, in order, in:

1. ``autograder/assignments/`` inside this package: the copy shipped to students and in the
   autograder zip holds exactly the one pack it was built for;
2. the folders in ``AUTOGRADER_ASSIGNMENTS`` (``os.pathsep``-separated), e.g. a course
   repository or the tests' fixture packs;
3. the course's packs: ``assignments/`` of the repository this package lives in, or, in an
   installed wheel, the copy of that folder the wheel carries (``autograder/_bundled/``).

The course's default pack (used by ``build``, ``demo`` and ``gradescope-check`` without
``--assignment``) is ``default`` in ``assignments/course.toml``, or the only pack there is.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import sys
import threading
import tomllib
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from ..errors import PackNotFound, SpecError
from .spec import Pack

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]
SHIPPED_DIR = PACKAGE_DIR / "assignments"
"""Where a shipped copy of the kit keeps its one pack."""
BUNDLED_ASSIGNMENTS = PACKAGE_DIR / "_bundled" / "assignments"
"""The course's packs as an installed wheel carries them (``pip install .`` maps the repository's
``assignments/`` and ``solutions/`` into ``autograder/_bundled/``; see ``setup.py``)."""
REPO_ASSIGNMENTS = (
    BUNDLED_ASSIGNMENTS if BUNDLED_ASSIGNMENTS.is_dir() else PACKAGE_DIR.parent / "assignments"
)
"""The course's packs: the repository's ``assignments/``, or the installed wheel's copy."""
SEARCH_ENV = "AUTOGRADER_ASSIGNMENTS"
"""Extra folders of packs (``os.pathsep``-separated), searched before the repository's."""
COURSE_FILE = "course.toml"
"""``assignments/course.toml``: ``default = "<name>"``, the pack used without --assignment."""
SPEC_FILE = "spec.py"
GIVENS_FILE = "givens.py"

_LOCK = threading.RLock()
_LOADED: dict[Path, Pack] = {}


def search_path() -> list[Path]:
    """The folders searched for packs, in order."""
    extra = [Path(p) for p in os.environ.get(SEARCH_ENV, "").split(os.pathsep) if p]
    return [SHIPPED_DIR, *extra, REPO_ASSIGNMENTS]


def _is_pack(folder: Path) -> bool:
    return (folder / SPEC_FILE).is_file()


def available() -> dict[str, Path]:
    """Pack name -> folder, for every pack on the search path (the first of a name wins)."""
    found: dict[str, Path] = {}
    for root in search_path():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and _is_pack(folder):
                found.setdefault(folder.name, folder)
    return found


def names() -> list[str]:
    """The names of every available pack, sorted."""
    return sorted(available())


def find(name: str) -> Path:
    """The folder of the pack ``name``.

    Raises:
        PackNotFound: no such pack; the message lists the available ones.
    """
    folder = available().get(name)
    if folder is None:
        known = ", ".join(names()) or "none"
        raise PackNotFound(f"no assignment {name!r} (available: {known})")
    return folder


def _module_name(folder: Path) -> str:
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    return f"_autograder_pack_{folder.name}_{digest}"


def _import_package(folder: Path) -> str:
    """Register the pack folder as a package (so ``spec.py`` may ``from . import givens``)."""
    module_name = _module_name(folder)
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_loader(module_name, loader=None, is_package=True)
        if spec is None:  # never for a loader-less package spec; keeps the type checker honest
            raise SpecError(f"cannot register {folder} as a package")
        package = importlib.util.module_from_spec(spec)
        package.__path__ = [str(folder)]
        sys.modules[module_name] = package
    return module_name


def load_path(folder: Path) -> Pack:
    """Load the pack in ``folder`` (cached per folder).

    Raises:
        SpecError: ``spec.py`` has no ``PACK``, its name differs from the folder's, or its
            givens are not those of ``givens.py`` (which the evaluator loads).
    """
    folder = Path(folder).resolve()
    with _LOCK:
        if folder in _LOADED:
            return _LOADED[folder]
        package = _import_package(folder)
        try:
            module = importlib.import_module(f"{package}.spec")
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError(f"{folder / SPEC_FILE} cannot be imported: {exc!r}") from exc
        pack = getattr(module, "PACK", None)
        if not isinstance(pack, Pack):
            raise SpecError(f"{folder / SPEC_FILE} defines no PACK = Pack(...)")
        if pack.name != folder.name:
            raise SpecError(f"{folder / SPEC_FILE}: PACK.name {pack.name!r} != folder name")
        givens_file = folder / GIVENS_FILE
        if pack.givens:
            shipped = _givens_module(package) if givens_file.is_file() else None
            registry = getattr(shipped, "GIVENS", None)
            if registry is None or dict(registry) != dict(pack.givens):
                raise SpecError(
                    f"pack {pack.name!r}: givens= must be GIVENS from its {GIVENS_FILE} (the "
                    "sandboxed evaluator loads that file only)"
                )
        pack = replace(pack, folder=folder)
        _LOADED[folder] = pack
        return pack


def loaded() -> list[Pack]:
    """The packs loaded from their folders so far in this process."""
    with _LOCK:
        return list(_LOADED.values())


def owner(target: object) -> tuple[Pack, str] | None:
    """The loaded pack declaring this very target object, and the target's place in it
    (``"<question id>/<position>/<name>"``, stable while the pack's files are unchanged); None
    for a target of no pack loaded from a folder (e.g. one built in a test)."""
    for pack in loaded():
        for question in pack.questions:
            for position, declared in enumerate(question.functions):
                if declared is target:
                    return pack, f"{question.id}/{position}/{declared.name}"
    return None


def _givens_module(package: str) -> ModuleType:
    return importlib.import_module(f"{package}.givens")


def load(name: str | Path | Pack) -> Pack:
    """The pack called ``name``, or the pack in the folder ``name`` (a :class:`Pack` is returned
    as it is)."""
    if isinstance(name, Pack):
        return name
    if isinstance(name, Path):
        return load_path(name)
    return load_path(find(name))


def reference(pack: Pack) -> Path | Pack:
    """A picklable way to name the pack for another process (e.g. a Dask worker): its folder,
    or the pack itself when it has none."""
    return pack.folder if pack.folder is not None else pack


def givens_file(pack: Pack) -> Path | None:
    """The pack's ``givens.py`` (what the evaluator loads), or None when it hands out nothing."""
    if pack.folder is None or not pack.givens:
        return None
    path = pack.folder / GIVENS_FILE
    return path if path.is_file() else None


def shipped() -> list[str]:
    """The packs shipped inside this copy of the package (one in a student folder or a zip)."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if p.is_dir() and _is_pack(p))


def current() -> Pack:
    """The pack the notebook's test cells belong to: the one shipped with this copy of the
    package (a student folder, an autograder zip, a build's staging folder).

    Raises:
        PackNotFound: none or several are shipped (e.g. called from the repository).
    """
    packs = shipped()
    if len(packs) == 1:
        return load_path(SHIPPED_DIR / packs[0])
    raise PackNotFound(
        f"this copy of the kit ships {len(packs)} assignments ({', '.join(packs) or 'none'}); "
        "name the assignment explicitly"
    )


def default_name() -> str:
    """The course's default pack: ``default`` in ``assignments/course.toml``, or the only one.

    Raises:
        PackNotFound: no default is configured and there is not exactly one pack.
    """
    course = REPO_ASSIGNMENTS / COURSE_FILE
    if course.is_file():
        try:
            value = tomllib.loads(course.read_text(encoding="utf-8")).get("default")
        except tomllib.TOMLDecodeError as exc:
            raise PackNotFound(f"{course}: {exc}") from None
        if value:
            find(str(value))
            return str(value)
    packs = names()
    if len(packs) == 1:
        return packs[0]
    raise PackNotFound(
        f"choose one with --assignment: {', '.join(packs) or 'no assignments found'}"
    )
