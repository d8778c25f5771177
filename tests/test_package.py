"""The kit as a package: metadata, pins in one place, and a wheel installed outside the repository."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from autograder import pins
from autograder.build import AUTOGRADER_PACKAGES

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_reads_its_pins_from_the_requirements_files():
    """Are dependencies and extras dynamic, read from the requirements files (one place for pins)?"""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert set(project["project"]["dynamic"]) == {"dependencies", "optional-dependencies"}
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"]["file"] == ["requirements.txt"]
    assert set(dynamic["optional-dependencies"]) == {"test", "docs", "dev"}
    for extra in dynamic["optional-dependencies"].values():
        assert all((REPO / f).is_file() for f in extra["file"])
    assert project["project"]["scripts"]["autograder"] == "autograder.cli:main"


def test_every_requirement_is_pinned_exactly():
    """Is every line of every requirements file an exact `==` pin?"""
    for path in REPO.glob("requirements*.txt"):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                assert "==" in line, f"{path.name}: {line!r} is not pinned with =="


def test_zip_requirements_come_from_requirements_txt():
    """Does the zip's requirements.txt carry requirements.txt's numpy and sympy pins?"""
    text = pins.pinned(*AUTOGRADER_PACKAGES)
    for name in AUTOGRADER_PACKAGES:
        pinned_line = next(
            line
            for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.startswith(f"{name}==")
        )
        assert f"{pinned_line}\n" in text


@pytest.mark.slow
def test_wheel_installed_outside_the_repository_grades_the_demo(tmp_path):
    """Does `pip install` of the wheel into a fresh venv outside the repository run `autograder demo`?"""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "autograder/_bundled/assignments/course.toml" in names
    assert "autograder/_bundled/solutions/math_primer/samples.py" in names
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    subprocess.run([env / "bin" / "pip", "install", "-q", str(wheel)], check=True, cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [env / "bin" / "autograder", "demo", "--out", "demo"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    gradebook = (work / "demo" / "gradebook.csv").read_text()
    assert gradebook.count("\n") == 7  # header + the six demo submissions
    assert "invalid" in gradebook and "graded" in gradebook
