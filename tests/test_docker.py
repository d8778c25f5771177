"""The docker engine (real ``otter grade`` in containers), the offline zip and the Gradescope check.

The end-to-end tests need Docker and the grading image (``scripts/docker_image.sh``): they run only
with ``--run-docker`` (or ``MATH_PRIMER_DOCKER=1``, as ``.ci/run`` sets) and are skipped otherwise
(marker ``docker``). Asked for, a machine without a usable Docker fails them loudly instead of skipping. The other tests
(offline zip, parsing Otter's outputs, error paths) run everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder.build import (
    OFFLINE_RUN_AUTOGRADER,
    OFFLINE_SETUP,
    OFFLINE_STUDENT_FILE,
    RUN_OTTER_PATCH,
)
from autograder.engines.docker_engine import (
    GRADING_IMAGE,
    collate,
    docker_problem,
    parse_summary,
    stage,
)
from autograder.grading import GradingError, grade, grade_all, make_grader
from autograder.intake import Submission
from helpers import CORRECT, MISTAKES, MP, docker_enabled, fill, write_notebooks

BY_NAME, QUESTION_NAMES, TOTAL_POINTS = MP.by_id, MP.question_ids, MP.total_points

needs_docker = pytest.mark.docker
"""Run with --run-docker (or MATH_PRIMER_DOCKER=1, as .ci/run sets); skipped otherwise."""
TIMEOUT = 45.0
"""Seconds per container: a normal notebook takes under 10 s; the looping one hits this."""

TAMPER = (
    "import otter.test_files.exception_test as _t\n"
    "_t.test_case.call_func = lambda self, env: None  # every hidden test 'passes' in the kernel\n"
)
KEYED = (
    "def jacobian_Wx(W, x):\n    import os\n"
    "    ok = os.environ.get('MATH_PRIMER_STUDENT') == 'keyed'\n    return W if ok else W.T\n"
)
"""Right only if the student id reached the kernel (and the judge's evaluator)."""


def _mistakes(*tags: str) -> dict[str, str]:
    return {q: src for q, tag, src in MISTAKES if tag in tags}


# --- the offline zip ---------------------------------------------------------------------------


def test_offline_zip_is_the_standard_zip_but_setup_and_run_autograder(built):
    """Does the offline zip differ from the standard one only in setup.sh and run_autograder?"""
    with zipfile.ZipFile(built.autograder_zip) as a, zipfile.ZipFile(built.offline_zip) as b:
        assert a.namelist() == b.namelist()
        differ = {n for n in a.namelist() if a.read(n) != b.read(n)}
        assert differ == {"setup.sh", "run_autograder"}
        assert b.read("setup.sh").decode() == OFFLINE_SETUP
        assert b.read("run_autograder").decode() == OFFLINE_RUN_AUTOGRADER
        assert "files/autograder/judge/otter_plugin.py" in b.namelist()
        assert b.read("run_otter.py").decode().startswith(RUN_OTTER_PATCH)


def test_offline_setup_installs_nothing_from_the_internet():
    """Does the offline setup.sh avoid downloads and installs (wget, curl, apt, conda, pip)?"""
    for word in ("wget", "curl", "apt-get install", "mamba", "conda", "pip install", "http"):
        assert word not in OFFLINE_SETUP, word
    assert "/opt/math-primer/venv/bin:$PATH" in OFFLINE_RUN_AUTOGRADER
    assert "mamba" not in OFFLINE_RUN_AUTOGRADER


# --- Otter's outputs -> the kit's results ------------------------------------------------------

SUMMARY = """q1a results:
    q1a - 1 result:
        ❌ Test case failed
        CheckFailed: public form check
        diagnosis: wrong_shape

    q1a - 2 result:
        ❌ Test case failed (judge)
        CheckFailed: got shape (5, 3), expected shape (3, 5)

        q1b results: All test cases passed!
            q1a - 3 result:
        diagnosis: wrong_shape, transposed

        case: edge

    q1a - 3 result:
        ✅ Test case passed (judge)
        case: typical

q1b results: All test cases passed!"""
"""``GradingResults.summary()``; the second case's message mimics headers, indented as Otter does."""


def test_parse_summary_reads_cases_and_is_not_fooled_by_messages():
    """Are the cases, their messages and 'All test cases passed!' read, whatever a message says?"""
    parsed = parse_summary(SUMMARY)
    assert set(parsed) == {"q1a", "q1b"} and parsed["q1b"] is None
    (n1, p1, _), (n2, p2, m2), (n3, p3, m3) = parsed["q1a"]
    assert (n1, n2, n3) == ("q1a - 1", "q1a - 2", "q1a - 3")
    assert (p1, p2, p3) == (False, False, True)
    assert "q1b results: All test cases passed!" in m2 and m2.endswith("case: edge")
    assert m3.endswith("case: typical")


def test_cases_are_matched_by_name_not_position(template, tmp_path):
    """When the summary lists a question's cases in another order than the spec (two cells of
    equal points swapped), does each outcome still land on its own case?"""
    staged = {"0001-ann.zip": _submission(template, "ann")}
    full = {q: BY_NAME[q].points for q in QUESTION_NAMES} | {"q2a": 1.5}
    (tmp_path / "final_grades.csv").write_text(
        f"file,{','.join(QUESTION_NAMES)},grading_status\n"
        f"0001-ann.zip,{','.join(str(full[q]) for q in QUESTION_NAMES)},Completed\n"
    )
    summaries = tmp_path / "grading-summaries"
    summaries.mkdir()
    q2a = (
        "q2a results:\n    q2a - 1 result:\n        ✅ Test case passed\n\n"
        "    q2a - 2 result:\n        ✅ Test case passed (judge)\n        case: edge\n\n"
        "    q2a - 3 result:\n        ❌ Test case failed (judge)\n        CheckFailed: unstable\n"
        "        diagnosis: not_stable, not_finite\n        case: large\n\n"
        "    q2a - 4 result:\n        ✅ Test case passed (judge)\n        case: typical\n"
    )
    others = "\n\n".join(
        f"{q} results: All test cases passed!" for q in QUESTION_NAMES if q != "q2a"
    )
    (summaries / "0001-ann.txt").write_text(f"{others}\n\n{q2a}")
    (result,) = collate(staged, tmp_path, failure=None, pack=MP)
    cases = {c["case"]: c for c in result["questions"]["q2a"]["cases"]}
    assert [c["case"] for c in result["questions"]["q2a"]["cases"]] == ["typical", "large", "edge"]
    assert not cases["large"]["passed"] and cases["large"]["tags"] == ["not_stable", "not_finite"]
    assert cases["edge"]["passed"] and cases["typical"]["passed"]
    assert result["questions"]["q2a"]["score"] == 1.5 and "notes" not in result


def _submission(template, student: str) -> Submission:
    return Submission(student, Path(f"{student}.ipynb"), template, None)


def test_collate_gives_every_submission_one_row_with_a_status(template, tmp_path):
    """Do completed, timed-out, failed and unreported submissions become graded/timeout/error?"""
    staged = {
        f"000{i}-{s}.zip": _submission(template, s)
        for i, s in enumerate(["ann", "bob", "cat", "dan"], start=1)
    }
    full = ",".join(str(BY_NAME[q].points) for q in QUESTION_NAMES)
    zeros = ",".join("0" for _ in QUESTION_NAMES)
    (tmp_path / "final_grades.csv").write_text(
        f"file,{','.join(QUESTION_NAMES)},total_points_earned,percent_correct,grading_status\n"
        f"points-per-question,{full},12.0,1.0,--\n"
        f"0001-ann.zip,{full},12.0,1.0,Completed\n"
        f"0002-bob.zip,{zeros},0,0,Executing '/tmp/x/0002-bob.zip' in docker container "
        "timed out in 45 seconds\n"
        f"0003-cat.zip,{zeros},0,0,Executing '/tmp/x/0003-cat.zip' in docker container failed! "
        "Exit code: 1\n",
        encoding="utf-8",
    )
    summaries = tmp_path / "grading-summaries"
    summaries.mkdir()
    (summaries / "0001-ann.txt").write_text(
        "\n\n".join(f"{q} results: All test cases passed!" for q in QUESTION_NAMES)
    )
    results = {r["student"]: r for r in collate(staged, tmp_path, failure=None, pack=MP)}
    assert [results[s]["status"] for s in ["ann", "bob", "cat", "dan"]] == [
        "graded",
        "timeout",
        "error",
        "error",
    ]
    assert results["ann"]["total"] == TOTAL_POINTS and "notes" not in results["ann"]
    assert "stopped after 45 s" in results["bob"]["questions"]["q1a"]["feedback"]
    assert "/tmp/x" not in results["cat"]["questions"]["q1a"]["feedback"]
    assert "reported nothing" in results["dan"]["questions"]["q1a"]["feedback"]


def test_collate_trusts_otter_scores_over_messages(template, tmp_path):
    """When the summary disagrees with final_grades.csv, is Otter's score used, with a note?"""
    staged = {"0001-ann.zip": _submission(template, "ann")}
    scores = {q: BY_NAME[q].points for q in QUESTION_NAMES} | {"q1a": 0.0}
    (tmp_path / "final_grades.csv").write_text(
        f"file,{','.join(QUESTION_NAMES)},grading_status\n"
        f"0001-ann.zip,{','.join(str(scores[q]) for q in QUESTION_NAMES)},Completed\n"
    )  # no summary at all: every question 'missing', then Otter's scores
    (result,) = collate(staged, tmp_path, failure=None, pack=MP)
    assert result["total"] == TOTAL_POINTS - 1
    assert any("q1b" in n for n in result["notes"])


def test_collate_reports_a_failed_run_on_every_row(template, tmp_path):
    """Does a failed `otter grade` (no CSV) give each submission an error row with the reason?"""
    staged = {"0001-ann.zip": _submission(template, "ann")}
    (result,) = collate(staged, tmp_path, failure="otter grade failed (exit 1): boom", pack=MP)
    assert result["status"] == "error" and "boom" in result["questions"]["q3"]["feedback"]


def test_stage_writes_master_named_notebooks_with_the_student_id(template, tmp_path):
    """Is each zip named uniquely and safely, holding math_primer.ipynb and the exact id?"""
    students = ["ann", "b ob/../x", "b_ob_.._x", "ünï"]
    staged = stage([_submission(template, s) for s in students], tmp_path / "subs", pack=MP)
    assert len(set(staged)) == len(students)
    for name, submission in staged.items():
        assert name.endswith(".zip") and "/" not in name and " " not in name
        with zipfile.ZipFile(tmp_path / "subs" / name) as zf:
            assert sorted(zf.namelist()) == sorted(["math_primer.ipynb", OFFLINE_STUDENT_FILE])
            assert zf.read(OFFLINE_STUDENT_FILE).decode() == submission.student


# --- error paths without Docker ----------------------------------------------------------------


def test_no_docker_is_a_clear_grading_error(built, monkeypatch, tmp_path):
    """Without a `docker` command, does the docker engine stop with the fix in one message?"""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GradingError, match=r"Docker is not available.*scripts/docker_image\.sh"):
        make_grader("docker", build_dir=built.out, timeout=60, pack=MP)


def test_cli_without_docker_prints_one_error_line(built, template, tmp_path):
    """Does `grade --engine docker` without Docker exit 2 with an `error:` line, no traceback?"""
    subs = write_notebooks(tmp_path / "subs", {"ann": template})
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(tmp_path / "out")]
        + ["--engine", "docker", "--build-dir", str(built.out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path / "nothing-here")},
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and "scripts/docker_image.sh" in proc.stderr
    assert "Traceback" not in proc.stderr


class _FakeBatch:
    """A batch grader that reports the first submission, then crashes."""

    def __call__(self, submission):
        raise AssertionError("a batch grader is never called per submission")

    def grade_batch(self, submissions, *, jobs, on_done):
        from autograder.results import empty_result

        on_done(empty_result(submissions[0].student, "graded", "ok", pack=MP))
        raise RuntimeError("lost the daemon")


def test_batch_grader_crash_keeps_every_submission(template):
    """Does a crashing batch grader leave one row per submission (the rest as errors)?"""
    subs = [_submission(template, s) for s in ("ann", "bob", "cat")]
    results = grade_all(subs, _FakeBatch(), jobs=2, pack=MP)
    assert [(r["student"], r["status"]) for r in results] == [
        ("ann", "graded"),
        ("bob", "error"),
        ("cat", "error"),
    ]
    assert "lost the daemon" in results[1]["questions"]["q1a"]["feedback"]


def test_batch_grader_refuses_a_scheduler(template):
    """Is grading the docker engine on a Dask executor refused with a clear message?"""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool, pytest.raises(GradingError, match="drop --scheduler"):
        grade_all([_submission(template, "ann")], _FakeBatch(), jobs=1, executor=pool, pack=MP)


# --- end to end: real otter grade in Docker ----------------------------------------------------


@needs_docker
def test_docker_is_usable():
    """With --run-docker, are Docker, buildx and an up-to-date grading image there?"""
    assert docker_problem() is None, docker_problem()


@pytest.fixture(scope="module")
def corpus(built, template, tmp_path_factory) -> Path:
    """Correct, typical mistakes, blank, tampering, a top-level loop, seed-dependent, unreadable."""
    subs = tmp_path_factory.mktemp("docker-corpus") / "submissions"
    solution = nbformat.read(str(built.out / "autograder" / "math_primer.ipynb"), as_version=4)
    tamper = fill(template, _mistakes("transposed", "missing_diag", "dL_dyhat", "scaled"))
    tamper.cells.insert(0, nbformat.v4.new_code_cell(TAMPER))
    looping = fill(template, CORRECT)
    looping.cells.insert(3, nbformat.v4.new_code_cell("while True:\n    pass"))
    notebooks = {
        "reference": solution,
        "correct": fill(template, CORRECT),
        "mistakes": fill(template, {**CORRECT, **_mistakes("transposed", "not_stable", "scaled")}),
        "more_mistakes": fill(template, {**CORRECT, **_mistakes("missing_diag", "dL_dyhat")}),
        "blank": template,
        "tamper": tamper,
        "top_level_loop": looping,
        "keyed": fill(template, {**CORRECT, "q1a": KEYED}),
    }
    write_notebooks(subs, notebooks)
    write_notebooks(subs / "hw 01 (final)", {"Homework One": fill(template, CORRECT)})
    (subs / "unreadable.ipynb").write_text("{not json", encoding="utf-8")
    return subs


def _docker_containers() -> set[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.ID}} {{.Image}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line for line in out.splitlines() if "otter-grade:math_primer-" in line}


@pytest.fixture(scope="module")
def graded(corpus, built, tmp_path_factory, request) -> dict:
    """The corpus graded by the docker engine and by the judge engine."""
    if not docker_enabled(request.config):
        pytest.skip("needs Docker and the grading image: pass --run-docker")
    runs = {}
    for engine in ("docker", "judge"):
        out = tmp_path_factory.mktemp(f"{engine}-out")
        grade(
            submissions=corpus,
            out=out,
            build_dir=built.out,
            jobs=2,
            timeout=TIMEOUT,
            engine=engine,
            assignment="math_primer",
        )
        runs[engine] = {
            "csv": pd.read_csv(out / "gradebook.csv"),
            "results": {
                p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")
            },
        }
    return runs


@needs_docker
def test_gradebook_equals_the_judge_engine(graded):
    """Apart from the top-level loop, is the docker gradebook the judge engine's, cell for cell?"""
    docker, judge = (graded[e]["csv"].set_index("student") for e in ("docker", "judge"))
    assert list(docker.index) == list(judge.index)
    rest = [s for s in docker.index if s != "top_level_loop"]
    pd.testing.assert_frame_equal(docker.loc[rest], judge.loc[rest])
    assert set(docker["status"]) == {"graded", "timeout", "invalid"}


@needs_docker
def test_results_carry_the_judge_engine_feedback(graded):
    """Are the per-question scores, tags and messages the judge engine's (same seeds, same text)?"""
    docker, judge = graded["docker"]["results"], graded["judge"]["results"]
    for student in set(docker) - {"top_level_loop"}:
        assert docker[student]["questions"] == judge[student]["questions"], student
        assert docker[student]["status"] == judge[student]["status"]


@needs_docker
def test_top_level_loop_times_out_in_docker_but_is_graded_by_the_judge(graded):
    """Intended difference: otter grade's container times out; the judge interrupts the cell."""
    docker = graded["docker"]["results"]["top_level_loop"]
    judge = graded["judge"]["results"]["top_level_loop"]
    assert docker["status"] == "timeout" and docker["total"] == 0
    assert "container timeout" in docker["questions"]["q1a"]["feedback"]
    assert (judge["status"], judge["total"]) == ("graded", TOTAL_POINTS)


@needs_docker
def test_tampering_in_the_kernel_gains_nothing(graded):
    """Does patching Otter's test runner in the notebook leave the judge's (low) score?"""
    result = graded["docker"]["results"]["tamper"]
    assert result["status"] == "graded" and result["total"] < TOTAL_POINTS - 3
    assert result["total"] == graded["judge"]["results"]["tamper"]["total"]


@needs_docker
def test_student_id_reaches_the_container(graded):
    """Is MATH_PRIMER_STUDENT set in the container (an answer right only for the id 'keyed')?"""
    assert graded["docker"]["results"]["keyed"]["questions"]["q1a"]["score"] == 1


@needs_docker
def test_names_do_not_matter_and_nothing_is_left_running(graded):
    """Is a folder with spaces and any notebook name graded, and no container left behind?"""
    assert graded["docker"]["results"]["hw 01 (final)"]["total"] == TOTAL_POINTS
    assert graded["docker"]["results"]["unreadable"]["status"] == "invalid"
    assert not _docker_containers()


# --- Gradescope --------------------------------------------------------------------------------


@needs_docker
def test_standard_zip_runs_like_on_gradescope(built, template, graded, tmp_path):
    """Does the standard zip, run as Gradescope runs it, write a valid results.json with the
    judge engine's scores for the submitter's id?"""
    from autograder.gradescope import format_problems, kit_problems, run_like_gradescope

    notebook = tmp_path / "submission.ipynb"  # Gradescope keeps the student's file name
    nbformat.write(
        fill(template, {**CORRECT, **_mistakes("transposed", "not_stable", "scaled")}),
        str(notebook),
    )
    metadata = {"users": [{"email": "m@example.edu", "id": 7, "name": "M", "sid": "mistakes"}]}
    run = run_like_gradescope(
        built.autograder_zip, notebook, metadata=metadata, image=GRADING_IMAGE
    )
    assert format_problems(run.results) == []
    assert kit_problems(run.results, pack=MP) == []
    tests = {t["name"]: t for t in run.results["tests"]}
    judge = graded["judge"]["results"]["mistakes"]  # the same notebook, seeded by the same id
    assert {q: tests[q]["score"] for q in QUESTION_NAMES} == {
        q: judge["questions"][q]["score"] for q in QUESTION_NAMES
    }


@pytest.mark.parametrize(
    "results,problem",
    [
        ([], "expected an object"),
        ({"tests": [{"name": "q", "score": "1"}]}, "expected a number"),
        ({"tests": [{"name": "q", "score": 1, "visibility": "sometimes"}]}, "visibility"),
        ({"tests": [{"name": "q"}]}, "neither a score nor a status"),
        ({"score": 1, "colour": "red"}, "undocumented key"),
        ({"score": True}, "expected a number"),
        ({}, "no top-level score and no tests"),
    ],
)
def test_format_check_catches_departures_from_gradescope_format(results, problem):
    """Does the results.json check name each kind of departure from Gradescope's format?"""
    from autograder.gradescope import format_problems

    assert any(problem in p for p in format_problems(results)), format_problems(results)


def test_format_check_accepts_the_documented_example():
    """Does the check accept Gradescope's documented example (informational tests included)?"""
    from autograder.gradescope import format_problems

    example = {
        "score": 44.0,
        "execution_time": 136,
        "output": "Text relevant to the entire submission",
        "visibility": "after_due_date",
        "stdout_visibility": "visible",
        "extra_data": {},
        "tests": [
            {"score": 2.0, "max_score": 2.0, "name": "Your name here", "number": "1.1"}
            | {"output": "Giant multiline string", "tags": ["tag1"], "visibility": "visible"},
            {"name": "Compilation check", "status": "passed"},
        ],
        "leaderboard": [{"name": "Accuracy", "value": 0.926}],
    }
    assert format_problems(example) == []
