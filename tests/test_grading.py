"""End-to-end grading through the real Otter path (Otter Assign build, ``otter run`` per notebook).

One batch is graded per module (two jobs in parallel); the tests ask questions about its output.
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder.grading import grade
from helpers import CORRECT, EQUIVALENT, MISTAKES, MP, TINY, fill, write_notebooks

BY_NAME, QUESTION_NAMES, TOTAL_POINTS = MP.by_id, MP.question_ids, MP.total_points
TIMEOUT = 40.0


def mistake_notebooks() -> dict[str, list[tuple[str, str]]]:
    """The catalogue spread over notebooks with at most one mistake per question each."""
    by_question: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for question, tag, source in MISTAKES:
        by_question[question].append((tag, source))
    rounds = max(len(v) for v in by_question.values())
    return {
        f"mistakes_{i}": [(q, by_question[q][i][0]) for q in by_question if i < len(by_question[q])]
        for i in range(rounds)
    }


def _mistake_source(question: str, tag: str) -> str:
    return next(src for q, t, src in MISTAKES if q == question and t == tag)


@pytest.fixture(scope="module")
def corpus(built, template, tmp_path_factory) -> Path:
    """One folder holding every kind of submission, and a roster."""
    return _write_corpus(built, template, tmp_path_factory.mktemp("corpus"))


def _grade(corpus: Path, built, out: Path, engine: str) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MATH_PRIMER_CALL_TIMEOUT", "2")  # the timeout mistake costs 2 s a call
        run = grade(
            submissions=corpus / "submissions",
            out=out,
            build_dir=built.out,
            jobs=2,
            timeout=TIMEOUT,
            roster=corpus / "roster.csv",
            engine=engine,
            assignment="math_primer",
        )
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    return {"run": run, "results": results, "out": out, "csv": pd.read_csv(out / "gradebook.csv")}


@pytest.fixture(scope="module")
def batch(corpus, built, tmp_path_factory) -> dict:
    """The corpus graded through the real Otter path (`otter run` per notebook)."""
    return _grade(corpus, built, tmp_path_factory.mktemp("otter-out"), "otter")


def _write_corpus(built, template, root: Path) -> Path:
    subs = root / "submissions"
    solution = nbformat.read(str(built.out / "autograder" / "math_primer.ipynb"), as_version=4)
    notebooks = {
        "reference": solution,
        "correct": fill(template, CORRECT),
        "blank": template,
        "hw01_renamed": fill(template, CORRECT),
    }
    for name, entries in mistake_notebooks().items():
        notebooks[name] = fill(
            template, {**CORRECT, **{q: _mistake_source(q, t) for q, t in entries}}
        )
    rounds = max(len(v) for v in EQUIVALENT.values())
    for i in range(rounds):
        forms = {q: v[i] for q, v in EQUIVALENT.items() if i < len(v)}
        notebooks[f"equivalent_{i}"] = fill(template, {**CORRECT, **forms})
    # a student whose answer is right only if the kit passed their id to the kernel
    keyed = (
        "def jacobian_Wx(W, x):\n    import os\n"
        "    ok = os.environ.get('MATH_PRIMER_STUDENT') == 'keyed'\n    return W if ok else W.T\n"
    )
    notebooks["keyed"] = fill(template, {**CORRECT, "q1a": keyed})
    broken_cells = fill(template, CORRECT)
    broken_cells.cells.insert(3, nbformat.v4.new_code_cell("this is not python"))
    broken_cells.cells.insert(4, nbformat.v4.new_code_cell("raise RuntimeError('boom')"))
    notebooks["syntax_error"] = broken_cells
    looping = fill(template, CORRECT)
    looping.cells.insert(3, nbformat.v4.new_code_cell("while True:\n    pass"))
    notebooks["top_level_loop"] = looping
    write_notebooks(subs, {k: v for k, v in notebooks.items() if k != "hw01_renamed"})
    # layouts: a folder per student with any notebook name, and a zip with a nested notebook
    write_notebooks(subs / "hw01_renamed", {"hw01": notebooks["hw01_renamed"]})
    with zipfile.ZipFile(subs / "zipped.zip", "w") as zf:
        zf.writestr("deep/folder/anything.ipynb", nbformat.writes(fill(template, CORRECT)))
        zf.writestr(".OTTER_LOG", b"not a pickle")
    (subs / "empty.ipynb").write_bytes(b"")
    (subs / "invalid.ipynb").write_text("{not json", encoding="utf-8")
    roster = root / "roster.csv"
    roster.write_text("student,name\ncorrect,Cora\nblank,Bill\nabsent,Abe\n", encoding="utf-8")
    return root


def scores(result: dict) -> dict[str, float]:
    return {q: result["questions"][q]["score"] for q in QUESTION_NAMES}


@pytest.mark.parametrize("student", ["reference", "correct", "hw01_renamed", "zipped"])
def test_correct_answers_score_full(batch, student):
    """Do the master's solutions and the sample correct answers score 12/12 in any layout?"""
    result = batch["results"][student]
    assert result["status"] == "graded"
    assert result["total"] == TOTAL_POINTS, result


def test_blank_template_scores_zero_and_is_graded(batch):
    """Does the untouched template score 0 with status graded and `missing` on every question?"""
    result = batch["results"]["blank"]
    assert (result["status"], result["total"]) == ("graded", 0)
    assert all("missing" in q["tags"] for q in result["questions"].values())


@pytest.mark.parametrize("question,tag", [(q, t) for q, t, _ in MISTAKES])
def test_each_mistake_loses_points_with_its_tag(batch, question, tag):
    """Does each catalogued mistake lose points on its question, with the expected tag?"""
    name = next(n for n, entries in mistake_notebooks().items() if (question, tag) in entries)
    entry = batch["results"][name]["questions"][question]
    assert entry["score"] < BY_NAME[question].points
    assert tag in entry["tags"], entry
    assert entry["feedback"] and "diagnosis:" not in entry["feedback"]


@pytest.mark.parametrize("name", sorted(mistake_notebooks()))
def test_mistakes_leave_other_questions_untouched(batch, name):
    """Do the questions without a mistake in a notebook still earn full points?"""
    wrong = {q for q, _ in mistake_notebooks()[name]}
    result = batch["results"][name]
    for question in set(QUESTION_NAMES) - wrong:
        assert result["questions"][question]["score"] == BY_NAME[question].points, question


def test_equivalent_forms_score_full(batch):
    """Do loops, einsum, inv, pinv, lstsq and QR forms all earn full points?"""
    equivalents = {k: v for k, v in batch["results"].items() if k.startswith("equivalent_")}
    assert equivalents
    for name, result in equivalents.items():
        assert result["total"] == TOTAL_POINTS, (name, result)


def test_student_id_reaches_the_kernel(batch):
    """Is the student id passed to the hidden tests' seed (here: an answer that depends on it)?"""
    assert batch["results"]["keyed"]["questions"]["q1a"]["score"] == 1


def test_broken_cells_do_not_stop_grading(batch):
    """Does a notebook with a syntax error and a raising cell still get its other answers graded?"""
    result = batch["results"]["syntax_error"]
    assert (result["status"], result["total"]) == ("graded", TOTAL_POINTS)


def test_top_level_infinite_loop_is_a_timeout_row(batch):
    """Does a notebook that never finishes become one `timeout` row instead of hanging the batch?"""
    assert batch["results"]["top_level_loop"]["status"] == "timeout"


@pytest.mark.parametrize("student", ["empty", "invalid"])
def test_unreadable_files_are_invalid_rows(batch, student):
    """Does an empty or non-JSON file give an `invalid` row, never a crash or a lost student?"""
    row = batch["csv"].set_index("student").loc[student]
    assert row["status"] == "invalid" and row["total"] == 0


def test_gradebook_has_one_row_per_submission_and_roster_student(batch, tmp_path):
    """Does every submission and every roster student appear exactly once, sorted?"""
    csv = batch["csv"]
    expected = set(batch["results"]) | {"absent"}
    assert list(csv["student"]) == sorted(expected)
    assert csv.set_index("student").loc["absent", "status"] == "missing"
    assert list(csv.columns[:11]) == ["student", *QUESTION_NAMES, "total", "percent", "status"]


def test_regrade_draws_the_same_instances(batch, built, template, tmp_path):
    """Does regrading a submission give byte-identical results (same seeds, same messages)?"""
    subs = write_notebooks(
        tmp_path / "again",
        {
            "mistakes_0": fill(
                template,
                {
                    **CORRECT,
                    **{q: _mistake_source(q, t) for q, t in mistake_notebooks()["mistakes_0"]},
                },
            )
        },
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MATH_PRIMER_CALL_TIMEOUT", "2")
        grade(
            submissions=subs,
            out=tmp_path / "out",
            build_dir=built.out,
            jobs=1,
            timeout=TIMEOUT,
            engine="otter",
            assignment="math_primer",
        )
    again = json.loads((tmp_path / "out" / "results" / "mistakes_0.json").read_text())
    assert again == batch["results"]["mistakes_0"]


def test_inverse_earns_advice_not_a_deduction(batch):
    """Does the `inv` form of q3 keep full points and carry an advice note in its feedback?"""
    entry = batch["results"]["equivalent_0"]["questions"]["q3"]
    assert "inv(" in EQUIVALENT["q3"][0]
    assert entry["score"] == 3 and "Advice" in entry["feedback"]


# --- the judge engine against the Otter path on the same corpus ---------------------------------

JUDGE_DIFFERENCES = {"top_level_loop"}
"""Intended differences (README): the judge interrupts a stuck top-level cell and grades the rest,
where `otter run` can only time out the whole notebook."""


@pytest.fixture(scope="module")
def judge_batch(corpus, built, tmp_path_factory) -> dict:
    """The same corpus graded by the judge engine."""
    return _grade(corpus, built, tmp_path_factory.mktemp("judge-out"), "judge")


def test_kernel_tests_agree_with_the_judge_on_honest_submissions(batch):
    """Do Otter's own tests, run in the student's kernel, score every honest submission as the
    judge plugin does (so the plugin changes nothing for honest students)?"""
    graded = {k: v for k, v in batch["results"].items() if v["status"] == "graded"}
    assert graded
    for student, result in graded.items():
        kernel = result["kernel_scores"]
        judge = {q: result["questions"][q]["score"] for q in QUESTION_NAMES}
        assert kernel == judge, student
        assert "notes" not in result or not any("disagree" in n for n in result["notes"])


def test_judge_agrees_with_otter_on_honest_submissions(batch, judge_batch):
    """Does the judge engine give every honest submission the Otter path's scores, tags and
    feedback?"""
    assert set(judge_batch["results"]) == set(batch["results"])
    for student, expected in batch["results"].items():
        if student in JUDGE_DIFFERENCES:
            continue
        got = judge_batch["results"][student]
        assert got["status"] == expected["status"], student
        for question in QUESTION_NAMES:
            assert got["questions"][question] == expected["questions"][question], (
                student,
                question,
            )


def test_judge_gradebook_equals_otter_gradebook(batch, judge_batch):
    """Are the two gradebooks equal row for row, apart from the documented differences?"""
    otter = batch["csv"].set_index("student").drop(index=list(JUDGE_DIFFERENCES))
    judge = judge_batch["csv"].set_index("student").drop(index=list(JUDGE_DIFFERENCES))
    pd.testing.assert_frame_equal(judge, otter)


def test_judge_interrupts_a_stuck_cell_and_grades_the_rest(judge_batch):
    """Does the judge interrupt a top-level infinite loop and still grade every answer?"""
    result = judge_batch["results"]["top_level_loop"]
    assert (result["status"], result["total"]) == ("graded", TOTAL_POINTS)
    assert any("interrupted" in note for note in result["notes"])


@pytest.mark.parametrize(("limit", "prefetched"), [(100, True), (1, False)])
def test_only_a_small_batch_loads_the_outputs_libraries_while_grading(
    tiny_template, tmp_path, monkeypatch, limit, prefetched
):
    """Does a batch of at most PREFETCH_LIMIT submissions import pandas and matplotlib while it
    is graded, and a larger one only at the end (so a large batch does not hold them throughout)?"""
    from autograder import grading

    started: list[str] = []
    real = grading.prefetch_outputs

    def watched():
        started.append("prefetch")
        return real()

    monkeypatch.setattr(grading, "PREFETCH_LIMIT", limit)
    monkeypatch.setattr(grading, "prefetch_outputs", watched)
    subs = write_notebooks(tmp_path / "subs", {"ann": tiny_template, "bob": tiny_template})
    run = grade(submissions=subs, out=tmp_path / "out", assignment=TINY, jobs=2)
    assert len(run.results) == 2
    assert bool(started) is prefetched
