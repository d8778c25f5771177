"""Build an assignment pack with Otter Assign: the student notebook and the autograder zip.

The master is first checked against its pack's spec (questions, points, test cells). The checks
package and the pack's Python files (``autograder/assignments/<name>/``) are staged next to a copy
of the master notebook (the master's config ships them with ``files: [autograder]``), Otter
Assign runs in a subprocess, and its output is laid out as ``DIR/student/`` and
``DIR/autograder/autograder.zip`` (a stable name beside Otter's timestamped zip), plus
``autograder-offline.zip``, the same zip for the grading image made by
``scripts/docker_image.sh`` (its ``setup.sh`` installs nothing, its ``run_autograder`` uses the
image's venv).

Layout of several packs: the course's default pack builds into ``dist/``, every other pack into
``dist/<name>/`` (``--out`` chooses any folder). A build replaces only ``DIR/student/``,
``DIR/autograder/`` and ``DIR/.fingerprint``, so the other packs' builds below ``dist/`` stay.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import KitError
from .givens import SEED_ENV
from .pack import registry
from .pack.spec import Pack

# Start-up: ``grade`` imports this module for ensure_built and source_fingerprint; what only a
# build needs (the master's check with nbformat and yaml, the pins, the given-cell fingerprint)
# is imported by build() itself.

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
SHIPPED = (
    "__init__.py",
    "checks",
    "judge",
    "pack",
    "errors.py",
    "results.py",
    "safetext.py",
    "advice.py",
    "intake.py",
    "intake_pool.py",
    "givens.py",
    "interrupts.py",
    "validate.py",
)
"""What of this package goes to students and into the zip: the checks, the pack API and the judge
(the Otter plugin) with the modules they import, and the students' pre-submit check
(``python -m autograder.validate NOTEBOOK``); not the CLI, the engines or the gradebook. The
pack's own Python files go to ``autograder/assignments/<name>/``; the student folder's copy also
gets the fingerprint of the notebook's given cells (:data:`autograder.validate.GIVEN_FILE`)."""
DEFAULT_OUT = Path("dist")
"""The default pack's build folder; other packs build into ``dist/<name>/``."""
RUN_OTTER_PATCH = (
    "import os, sys\n"
    "sys.path.insert(0, '/autograder/source/files')  # the kit's judge plugin ships there\n"
    "_metadata = '/autograder/submission_metadata.json'  # empty in otter grade's containers, but\n"
    "if os.path.isfile(_metadata) and not os.path.getsize(_metadata):  # json.load()ed (plugins)\n"
    "    with open(_metadata, 'w') as f:\n"
    "        f.write('{}')\n"
)
"""Prepended to the zip's ``run_otter.py`` so Otter can import the plugin in its containers, and
so that ``otter grade`` works with a plugin: its image holds an empty
``/autograder/submission_metadata.json``, which Otter 7.0.0 parses as JSON when plugins are
configured (Gradescope writes a real one)."""
AUTOGRADER_PACKAGES = ("numpy", "sympy")
"""Extra packages for the grading image (Otter adds its own), at the kit's pins
(:func:`autograder.pins.pinned`)."""
OFFLINE_VENV = "/opt/math-primer/venv"
"""The venv of the offline grading image (``VENV`` in ``scripts/docker_image.sh``)."""
OFFLINE_STUDENT_FILE = "autograder_student_id.txt"
"""A member of a submission zip holding the student id that seeds the instances (``docker``
engine): ``otter grade`` passes no environment variable into its containers."""
OFFLINE_SETUP = f"""#!/usr/bin/env bash
# Offline variant: the grading image (scripts/docker_image.sh) already holds Python, Otter and the
# kit's requirements in {OFFLINE_VENV}; this installs nothing, it checks them without network.
set -euo pipefail
if [ ! -x {OFFLINE_VENV}/bin/python ]; then
    echo "error: no {OFFLINE_VENV} in this image: build it with scripts/docker_image.sh" >&2
    exit 1
fi
{OFFLINE_VENV}/bin/python -c 'import importlib.metadata as md, sys, yaml
from packaging.requirements import Requirement
env = yaml.safe_load(open("/autograder/source/environment.yml"))
pins = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
for pin in map(Requirement, pins):  # the versions, not the extras (e.g. plugins: unused)
    try:
        found = md.version(pin.name)
    except md.PackageNotFoundError:
        found = None
    if found is None or not pin.specifier.contains(found, prereleases=True):
        sys.exit(f"error: the image has {{pin.name}} {{found}}, the zip wants {{pin}}: "
                 "rerun scripts/docker_image.sh")'
"""
"""``setup.sh`` of the offline zip (Otter runs it when it builds its grading image)."""
OFFLINE_RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Offline variant: grade with the venv of the grading image (scripts/docker_image.sh).
export PATH={OFFLINE_VENV}/bin:$PATH
if [ -z "${{{SEED_ENV}:-}}" ]; then  # the student id the docker engine ships in the zip, if any
    {SEED_ENV}="$(python -c 'import glob, zipfile
for path in glob.glob("/autograder/submission/*.zip"):
    with zipfile.ZipFile(path) as zf:
        if "{OFFLINE_STUDENT_FILE}" in zf.namelist():
            print(zf.read("{OFFLINE_STUDENT_FILE}").decode(), end="")')"
    [ -n "${SEED_ENV}" ] && export {SEED_ENV}
fi
python /autograder/source/run_otter.py
"""
"""``run_autograder`` of the offline zip."""


class BuildError(KitError):
    """Otter Assign failed, or the master notebook is missing."""


@dataclass(frozen=True)
class Build:
    """Where a built assignment lives."""

    out: Path
    """The build folder (``dist/`` for the default pack, ``dist/<name>/`` for the others)."""
    name: str
    """The pack's name."""

    @property
    def student_notebook(self) -> Path:
        """The notebook handed out to students."""
        return self.out / "student" / f"{self.name}.ipynb"

    @property
    def autograder_zip(self) -> Path:
        """The Otter autograder zip under its stable name."""
        return self.out / "autograder" / "autograder.zip"

    @property
    def offline_zip(self) -> Path:
        """The variant for the offline grading image (``scripts/docker_image.sh``)."""
        return self.out / "autograder" / "autograder-offline.zip"


def default_out(pack: Pack | str) -> Path:
    """The build folder of a pack when none is given: ``dist/`` for the course's default pack,
    ``dist/<name>/`` for the others."""
    name = pack if isinstance(pack, str) else pack.name
    try:
        default = registry.default_name()
    except KitError:
        default = None
    return DEFAULT_OUT if name == default else DEFAULT_OUT / name


def source_fingerprint(pack: Pack | str) -> str:
    """A hash of everything a build of the pack depends on, to know when a build is stale."""
    pack = registry.load(pack)
    digest = hashlib.sha256(pack.name.encode())
    digest.update((RUN_OTTER_PATCH + OFFLINE_SETUP + OFFLINE_RUN_AUTOGRADER).encode())
    for label, path in [*_shipped_files(), *_pack_files(pack)]:
        digest.update(label.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _shipped_files() -> list[tuple[str, Path]]:
    """(path in the staged ``autograder/``, file) for the kit's shipped modules."""
    files = []
    for name in SHIPPED:
        path = PACKAGE_DIR / name
        found = [path] if path.is_file() else sorted(path.rglob("*.py"))
        files += [(str(p.relative_to(PACKAGE_DIR)), p) for p in found]
    return files


def _pack_files(pack: Pack) -> list[tuple[str, Path]]:
    """(path in the staging folder, file): the master and the pack's Python files."""
    folder = pack.folder
    if folder is None:
        raise BuildError(f"pack {pack.name!r} has no folder with a master notebook")
    files = [(f"{pack.name}.ipynb", folder / f"{pack.name}.ipynb")]
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" not in path.parts:
            files.append((f"autograder/assignments/{pack.name}/{path.relative_to(folder)}", path))
    return files


def build(*, out: Path, pack: Pack | str) -> Build:
    """Check the pack's master against its spec, run Otter Assign on it and lay out the result
    in ``out``.

    Raises:
        BuildError: when the master is missing or Otter Assign fails (including its own check that
            the solutions pass the tests); the message holds Otter's output.
        KitError: no such pack, or its master disagrees with its spec (``MasterDrift``).
    """
    pack = registry.load(pack)
    if pack.folder is None:
        raise BuildError(f"pack {pack.name!r} has no folder with a master notebook")
    from .pack.master import check_master
    from .pins import pinned
    from .validate import write_given_file

    check_master(pack)
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="mp-build-") as scratch:
        stage = Path(scratch)
        for label, path in [
            *(("autograder/" + a, p) for a, p in _shipped_files()),
            *_pack_files(pack),
        ]:
            target = stage / label
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
        (stage / "requirements.txt").write_text(pinned(*AUTOGRADER_PACKAGES))
        master = stage / f"{pack.name}.ipynb"
        command = [sys.executable, "-m", "otter", "assign", master.name, "dist"]
        log.info("running %s", " ".join(command))
        proc = subprocess.run(command, cwd=stage, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            raise BuildError(
                "Otter Assign failed (do the master notebook's solutions pass its tests?):\n"
                + "\n".join(output.splitlines()[-25:])
            )
        out.mkdir(parents=True, exist_ok=True)
        (out / ".fingerprint").unlink(missing_ok=True)
        for part in ("student", "autograder"):
            if (out / part).exists():
                shutil.rmtree(out / part)
            shutil.copytree(stage / "dist" / part, out / part)
    write_given_file(
        notebook=out / "student" / f"{pack.name}.ipynb",
        folder=out / "student" / "autograder" / "assignments" / pack.name,
    )
    zips = sorted((out / "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise BuildError(f"Otter Assign wrote no autograder zip in {out / 'autograder'}")
    result = Build(out, pack.name)
    _patch_run_otter(zips[-1])
    shutil.copy(zips[-1], result.autograder_zip)
    write_offline_zip(result.autograder_zip, result.offline_zip)
    (out / ".fingerprint").write_text(source_fingerprint(pack))
    log.info("built %s, %s and its offline variant", result.student_notebook, result.autograder_zip)
    return result


def _patch_run_otter(zip_path: Path) -> None:
    """Rewrite the zip with :data:`RUN_OTTER_PATCH` at the top of ``run_otter.py``."""
    with zipfile.ZipFile(zip_path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            if info.filename == "run_otter.py":
                data = RUN_OTTER_PATCH.encode() + data
            zf.writestr(info, data)


def write_offline_zip(standard: Path, target: Path) -> None:
    """Copy the standard zip with :data:`OFFLINE_SETUP` and :data:`OFFLINE_RUN_AUTOGRADER`.

    Everything else (``run_otter.py`` with its ``sys.path`` line, ``files/autograder/``, the tests,
    the config) is the standard zip's, byte for byte.
    """
    offline = {"setup.sh": OFFLINE_SETUP, "run_autograder": OFFLINE_RUN_AUTOGRADER}
    with (
        zipfile.ZipFile(standard) as src,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(
                info, offline[info.filename].encode() if info.filename in offline else data
            )


def ensure_built(*, out: Path | None = None, pack: Pack | str | Path) -> Build:
    """Reuse the pack's build in ``out`` (default :func:`default_out`) if it is up to date with
    the sources, else build."""
    pack = registry.load(pack)
    out = default_out(pack) if out is None else out
    existing = Build(out.resolve(), pack.name)
    stamp = existing.out / ".fingerprint"
    if (
        existing.autograder_zip.is_file()
        and stamp.is_file()
        and stamp.read_text() == source_fingerprint(pack)
    ):
        if not existing.offline_zip.is_file():  # a build from before the offline variant
            write_offline_zip(existing.autograder_zip, existing.offline_zip)
        return existing
    return build(out=out, pack=pack)
