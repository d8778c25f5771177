"""Build the assignment with Otter Assign: the student notebook and the autograder zip.

The checks package is staged next to a copy of the master notebook (the master's config ships it
with ``files: [autograder]``), Otter Assign runs in a subprocess, and its output is laid out as
``DIR/student/`` and ``DIR/autograder/autograder.zip`` (a stable name beside Otter's timestamped
zip).
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

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
MASTER = REPO_DIR / "assignments" / "math_primer" / "math_primer.ipynb"
SHIPPED = (
    "__init__.py",
    "checks",
    "judge",
    "contract.py",
    "results.py",
    "advice.py",
    "intake.py",
    "givens.py",
)
"""What of this package goes to students and into the zip: the checks and the judge (the Otter
plugin) with the modules they import; not the CLI, the engines or the gradebook."""
RUN_OTTER_PATCH = (
    "import sys\n"
    "sys.path.insert(0, '/autograder/source/files')  # the kit's judge plugin ships there\n"
)
"""Prepended to the zip's ``run_otter.py`` so Otter can import the plugin in its containers."""
AUTOGRADER_REQUIREMENTS = "numpy==2.4.6\nsympy==1.14.0\n"
"""Extra packages for the grading image (Otter adds its own)."""


class BuildError(Exception):
    """Otter Assign failed, or the master notebook is missing."""


@dataclass(frozen=True)
class Build:
    """Where a built assignment lives."""

    out: Path
    """The build folder (``dist/`` by default)."""

    @property
    def student_notebook(self) -> Path:
        """The notebook handed out to students."""
        return self.out / "student" / "math_primer.ipynb"

    @property
    def autograder_zip(self) -> Path:
        """The Otter autograder zip under its stable name."""
        return self.out / "autograder" / "autograder.zip"


def source_fingerprint(master: Path = MASTER) -> str:
    """A hash of everything a build depends on, to know when a build is stale."""
    digest = hashlib.sha256(master.read_bytes())
    for path in sorted(_shipped_files()):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _shipped_files() -> list[Path]:
    files = []
    for name in SHIPPED:
        path = PACKAGE_DIR / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def build(*, out: Path, master: Path = MASTER) -> Build:
    """Run Otter Assign on the master notebook and lay out the result in ``out``.

    Raises:
        BuildError: when the master is missing or Otter Assign fails (including its own check that
            the solutions pass the tests); the message holds Otter's output.
    """
    if not master.is_file():
        raise BuildError(f"master notebook not found: {master}")
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="mp-build-") as scratch:
        stage = Path(scratch)
        shutil.copy(master, stage / master.name)
        for path in _shipped_files():
            target = stage / "autograder" / path.relative_to(PACKAGE_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
        (stage / "requirements.txt").write_text(AUTOGRADER_REQUIREMENTS)
        command = [sys.executable, "-m", "otter", "assign", master.name, "dist"]
        log.info("running %s", " ".join(command))
        proc = subprocess.run(command, cwd=stage, capture_output=True, text=True)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            raise BuildError(
                "Otter Assign failed (do the master notebook's solutions pass its tests?):\n"
                + "\n".join(output.splitlines()[-25:])
            )
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(stage / "dist", out)
    zips = sorted((out / "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise BuildError(f"Otter Assign wrote no autograder zip in {out / 'autograder'}")
    result = Build(out)
    _patch_run_otter(zips[-1])
    shutil.copy(zips[-1], result.autograder_zip)
    (out / ".fingerprint").write_text(source_fingerprint(master))
    log.info("built %s and %s", result.student_notebook, result.autograder_zip)
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


def ensure_built(*, out: Path, master: Path = MASTER) -> Build:
    """Reuse the build in ``out`` if it is up to date with the sources, else build."""
    existing = Build(out.resolve())
    stamp = existing.out / ".fingerprint"
    if (
        existing.autograder_zip.is_file()
        and stamp.is_file()
        and stamp.read_text() == source_fingerprint(master)
    ):
        return existing
    return build(out=out, master=master)
