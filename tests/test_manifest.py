"""Tests for the run manifest OUT/assignment.json (autograder/manifest.py), as grade writes it."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

import autograder.grading
import autograder.report
from autograder.grading import grade
from autograder.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    QuestionInfo,
    kit_version,
    make_manifest,
    read_manifest,
    write_manifest,
)
from helpers import CORRECT, MP, TINY, fill, write_notebooks

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graded(built, template, tmp_path_factory) -> dict:
    """Two real notebooks and a roster graded by the judge through grade()."""
    root = tmp_path_factory.mktemp("manifest")
    subs = write_notebooks(root / "subs", {"ann": fill(template, CORRECT), "bob": template})
    roster = root / "roster.csv"
    roster.write_text("student,name\nann,Ann\nbob,Bob\ncy,Cy\n", encoding="utf-8")
    before = datetime.now(UTC).replace(microsecond=0)
    grade(
        submissions=subs,
        out=root / "out",
        build_dir=built.out,
        jobs=2,
        roster=roster,
        assignment="math_primer",
    )
    after = datetime.now(UTC)
    return {"out": root / "out", "roster": roster, "before": before, "after": after}


def test_grade_writes_the_manifest(graded: dict) -> None:
    """Does grade write assignment.json naming the assignment, its questions, points, roster,
    engine, kit version and time of the run?"""
    record = json.loads((graded["out"] / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert record["format"] == 1
    assert record["assignment"] == "math_primer"
    assert record["title"] == "Math Primer"
    assert record["questions"] == [
        {"id": q.id, "sheet": q.sheet, "points": float(q.possible)} for q in MP.questions
    ]
    assert record["total_points"] == MP.total_points == 12
    assert record["roster"] == str(graded["roster"].resolve())
    assert record["engine"] == "judge"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert record["kit_version"] == pyproject["project"]["version"]
    when = datetime.fromisoformat(record["graded_at"])
    assert when.tzinfo is not None
    assert graded["before"] <= when <= graded["after"]


def test_the_written_manifest_reads_back(graded: dict) -> None:
    """Does read_manifest give the typed record of what grade wrote?"""
    manifest = read_manifest(graded["out"])
    assert isinstance(manifest, Manifest)
    assert manifest.questions[0] == QuestionInfo("q1a", "2-1 a", 1.0)
    assert [q.id for q in manifest.questions] == list(MP.question_ids)
    assert manifest.roster == str(graded["roster"].resolve())


def test_without_roster_the_manifest_says_null(built, template, tmp_path: Path) -> None:
    """Is the roster null when grade ran without one?"""
    subs = write_notebooks(tmp_path / "subs", {"ann": template})
    grade(submissions=subs, out=tmp_path / "out", build_dir=built.out, jobs=1)
    assert json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())["roster"] is None


def test_a_run_that_dies_while_writing_leaves_no_manifest(
    graded: dict, built, template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a rerun dies after it started rewriting a graded folder, is the old manifest gone, so
    that course refuses the half-written folder instead of trusting it?"""
    out = tmp_path / "out"
    subs = write_notebooks(tmp_path / "subs", {"ann": template})
    grade(submissions=subs, out=out, build_dir=built.out, jobs=1)
    assert (out / MANIFEST_NAME).exists()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(autograder.report, "write_report", crash)  # imported by write_outputs
    with pytest.raises(OSError, match="disk full"):
        grade(submissions=subs, out=out, build_dir=built.out, jobs=1)
    assert (out / "gradebook.csv").exists()
    assert not (out / MANIFEST_NAME).exists()


def test_manifest_round_trip(tmp_path: Path) -> None:
    """Does a written manifest read back equal, with the time in UTC to the second?"""
    now = datetime(2026, 12, 2, 11, 15, 30, 123456).astimezone()
    manifest = make_manifest(pack=TINY, roster=Path("r.csv"), engine="otter", now=now)
    assert manifest.assignment == "tiny" and manifest.title == "Tiny Sheet"
    # p2 is worth 2 autograded points and 1 for its derivation, marked by a TA
    assert manifest.questions == (QuestionInfo("p1", "T-1", 1.0), QuestionInfo("p2", "T-2", 3.0))
    assert manifest.total_points == 4.0
    assert manifest.graded_at == now.astimezone(UTC).replace(microsecond=0).isoformat()
    assert manifest.roster == str(Path("r.csv").resolve())
    assert manifest.kit_version == kit_version()
    path = write_manifest(manifest, tmp_path)
    assert path == tmp_path / MANIFEST_NAME
    assert read_manifest(tmp_path) == manifest
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]  # no temp file left


def test_a_folder_without_manifest_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Is a folder graded before manifests existed refused with a message saying to regrade?"""
    with pytest.raises(ManifestError, match=r"has no assignment\.json.*grade it again"):
        read_manifest(tmp_path)


def _valid() -> dict:
    manifest = make_manifest(pack=MP, roster=None, engine="judge")
    record = json.loads(json.dumps(manifest.__dict__, default=lambda o: o.__dict__))
    return record


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(format=2), "format 2"),
        (lambda r: r.pop("assignment"), "'assignment' must be a non-empty string"),
        (lambda r: r.update(title=""), "'title' must be a non-empty string"),
        (lambda r: r.update(roster=3), "'roster' must be a path or null"),
        (lambda r: r.update(questions=[]), "'questions' must be a non-empty list"),
        (lambda r: r["questions"][0].update(points=-1), "q1a: 'points' must be a number"),
        (lambda r: r["questions"][0].update(points="1"), "q1a: 'points' must be a number"),
        (lambda r: r["questions"][1].update(id="q1a"), "question ids repeat"),
        (lambda r: r.update(total_points=11), "'total_points' is 11"),
    ],
)
def test_malformed_manifests_are_refused(change, message: str, tmp_path: Path) -> None:
    """Is each malformed field a ManifestError naming the field?"""
    record = _valid()
    assert record["format"] == 1  # the fixture is valid before the change
    change(record)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path)


def test_a_manifest_that_is_not_json_is_refused(tmp_path: Path) -> None:
    """Is a truncated assignment.json a ManifestError, not a traceback?"""
    (tmp_path / MANIFEST_NAME).write_text('{"format": 1, "assig', encoding="utf-8")
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_manifest(tmp_path)
