"""Regrading one question for the class (autograder/regrade.py, ``grade --force --question``).

Through the real judge: the tiny fixture pack's demo samples are graded with a buggy check (a
copy of the pack whose p1 reference is twice the true gradient), a TA marks some answers in the
review store and the instructor writes one ``--overrides`` row; then the fixed pack (the fixture
itself) regrades p1 only.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from autograder import grading, interrupts
from autograder.cache import CACHE_DIR
from autograder.cli import main
from autograder.intake import discover
from autograder.judge.engine import grade_submission
from autograder.regrade import merge
from autograder.review.app import create_app
from autograder.review.questions import question_specs
from autograder.review.store import ReviewStore
from autograder.safecsv import read_csv
from autograder.samples import fill, load_samples, write_samples
from helpers import FIXTURE_PACKS, TINY

HALVES = (
    "return float(np.sum(GIVENS[f](x) ** 2) / 2)",
    "sympy=lambda f, x: sum(sympy_f(f)(t) ** 2 for t in x) / 2,",
)
"""p1's forward map and its sympy form in the fixture; the buggy copy drops their ``/ 2``."""
SCALED = "def chain_gradient(f, f_prime, x):\n    return 2 * f(x) * f_prime(x)\n"
"""An answer that is wrong, but matches the buggy check."""
OVERRIDES = "student,question,points,comment\ndora_partial,p1,0.5,checked by hand\n"
TOKEN = "test-token"
BASE = "http://127.0.0.1"


def template() -> nbformat.NotebookNode:
    """The tiny sheet as handed out: its answer cells still ``...``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny Sheet"),
        nbformat.v4.new_code_cell("import numpy as np"),
        nbformat.v4.new_code_cell("def chain_gradient(f, f_prime, x):\n    ..."),
        nbformat.v4.new_markdown_cell("#### Your derivation (T-2)"),
        nbformat.v4.new_code_cell("def matmul_backward(X, W, dY):\n    ..."),
    ]
    return nb


def buggy_pack(root: Path) -> Path:
    """A copy of the tiny pack whose p1 check expects twice the gradient."""
    folder = Path(shutil.copytree(FIXTURE_PACKS / "tiny", root / "buggy" / "tiny"))
    spec = folder / "spec.py"
    text = spec.read_text(encoding="utf-8")
    for line in HALVES:
        assert line in text
        text = text.replace(line, line.replace(" / 2", ""))
    spec.write_text(text, encoding="utf-8")
    return folder


def results(out: Path) -> dict[str, dict]:
    """The autograded results the review store holds (before any mark)."""
    return {r["student"]: r for r in ReviewStore.of(out).autograded()[1]}


def snapshot(out: Path) -> dict[str, bytes]:
    """Every output file but the cache and the store."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and CACHE_DIR not in p.parts and not p.name.startswith("review.sqlite")
    }


def cache_entries(out: Path) -> dict[str, dict]:
    """Student -> cached result."""
    entries = (json.loads(p.read_text()) for p in (out / CACHE_DIR).glob("*.json"))
    return {e["student"]: e["result"] for e in entries}


def possible(out: Path) -> dict[str, float]:
    return {q.id: q.points for q in question_specs(TINY, list(results(out).values()))}


def regrade_cli(subs: Path, out: Path, *args: str):
    """``python -m autograder grade SUBS --out OUT --assignment tiny ...`` (the fixed pack)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOGRADER_ASSIGNMENTS", str(FIXTURE_PACKS))
        args = ("grade", str(subs), "--out", str(out), "--assignment", "tiny", "--jobs", "2", *args)
        return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo samples and a scaled answer graded with the buggy p1 check; then a TA set p1 of
    ada_correct to 0.25, commented on cleo_blank's p1 and set ben_mistakes' p2 to 2 in the store.
    Read-only (tests work on copies)."""
    root = tmp_path_factory.mktemp("regrade")
    subs = root / "subs"
    path = root / "template.ipynb"
    nbformat.write(template(), str(path))
    write_samples(subs, pack=TINY, template_path=path)
    correct = load_samples(TINY).correct
    nbformat.write(fill(template(), {**correct, "p1": SCALED}, pack=TINY), str(subs / "gus.ipynb"))
    overrides = root / "overrides.csv"
    overrides.write_text(OVERRIDES, encoding="utf-8")
    out = root / "out"
    grading.grade(
        submissions=subs, out=out, assignment=buggy_pack(root), jobs=2, overrides=overrides
    )
    with ReviewStore.of(out).write(who="tess", possible=possible(out)) as tx:
        tx.set_points(student="ada_correct", question="p1", points=0.25, version=None)
        tx.set_comment(student="cleo_blank", question="p1", text="blank", version=None)
        tx.set_points(student="ben_mistakes", question="p2", points=2.0, version=None)
    return {"subs": subs, "out": out, "overrides": overrides, "root": root}


@pytest.fixture(scope="module")
def regraded(graded: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``graded`` regraded for p1 with the fixed pack, through the CLI. Read-only."""
    out = Path(shutil.copytree(graded["out"], tmp_path_factory.mktemp("regraded") / "out"))
    result = regrade_cli(
        graded["subs"], out, "--force", "--question", "p1", "--overrides", str(graded["overrides"])
    )
    assert result.exit_code == 0, result.output
    return {**graded, "out": out, "output": result.output}


@pytest.fixture()
def copy(regraded: dict, tmp_path: Path) -> Path:
    return Path(shutil.copytree(regraded["out"], tmp_path / "out"))


def test_the_buggy_check_did_fail_right_answers(graded):
    """Is the fixture's premise real: the buggy check fails ada's right p1 and passes gus's
    doubled one?"""
    before = results(graded["out"])
    assert before["ada_correct"]["questions"]["p1"]["score"] == 0
    assert before["gus"]["questions"]["p1"]["score"] == 1


def test_only_the_chosen_question_changed(graded, regraded):
    """Do the other question's entries stay byte-identical (results, cache) while p1 is graded
    again by the fixed check?"""
    before, after = results(graded["out"]), results(regraded["out"])
    assert set(before) == set(after)
    for student, result in after.items():
        old = before[student]
        assert json.dumps(result["questions"]["p2"]) == json.dumps(old["questions"]["p2"])
        assert result["status"] == old["status"]
        assert result["total"] == pytest.approx(
            sum(e["score"] for e in result["questions"].values())
        )
    assert after["ada_correct"]["questions"]["p1"]["score"] == 1
    assert after["gus"]["questions"]["p1"]["score"] == 0
    assert "scaled" in after["gus"]["questions"]["p1"]["tags"]
    cached = cache_entries(regraded["out"])
    assert set(cached) == set(after)  # one entry per student: the old fingerprint's were pruned
    for student, result in cached.items():
        assert json.dumps(result["questions"]["p2"]) == json.dumps(
            before[student]["questions"]["p2"]
        )


def test_other_questions_come_from_the_cache_not_a_new_grade(graded, tmp_path):
    """Are the other questions' entries taken from the cache as they are (a marked cached entry
    comes back marked) while p1 is judged again?"""
    out = Path(shutil.copytree(graded["out"], tmp_path / "out"))
    for path in (out / CACHE_DIR).glob("*.json"):
        entry = json.loads(path.read_text())
        entry["result"]["questions"]["p2"]["feedback"] = "from the cache"
        path.write_text(json.dumps(entry))
    run = grading.grade(
        submissions=graded["subs"],
        out=out,
        assignment=TINY,
        jobs=2,
        force=True,
        questions=("p1",),
    )
    assert run.regrade is not None and run.regrade.carried == run.regrade.regraded == 7
    graded_now = [r for r in results(out).values() if r["status"] == "graded"]
    assert len(graded_now) == 6
    for result in graded_now:
        assert result["questions"]["p2"]["feedback"] == "from the cache"
    assert results(out)["ada_correct"]["questions"]["p1"]["score"] == 1


def test_the_changes_file_lists_exactly_the_changed_answers(graded, regraded):
    """Does OUT/regrade-p1.csv hold one row per answer whose p1 points, tags or status changed,
    with the old and new points, and no other?"""
    before, after = results(graded["out"]), results(regraded["out"])

    def view(result: dict) -> tuple:
        entry = result["questions"]["p1"]
        return result["status"], entry["score"], entry["tags"]

    expected = {s for s in after if view(after[s]) != view(before[s])}
    assert {"ada_correct", "dora_partial", "finn_zip", "gus"} <= expected
    assert "eli_broken" not in expected and "cleo_blank" not in expected
    table = read_csv(regraded["out"] / "regrade-p1.csv", keep_default_na=False)
    assert list(table.columns) == [
        "student",
        "question",
        "old_status",
        "new_status",
        "old_points",
        "new_points",
        "old_tags",
        "new_tags",
        "human_mark",
        "final_points",
    ]
    assert set(table["student"]) == expected and set(table["question"]) == {"p1"}
    rows = table.set_index("student")
    assert (rows.loc["ada_correct", "old_points"], rows.loc["ada_correct", "new_points"]) == (0, 1)
    assert (rows.loc["gus", "old_points"], rows.loc["gus", "new_points"]) == (1, 0)
    assert rows.loc["gus", "new_tags"] == "scaled"


def test_human_marks_survive_and_changed_ones_are_flagged(regraded):
    """Do the TA's mark and the --overrides row stay on top in the gradebook, and are exactly
    the changed answers under a human mark flagged (not unchanged or other-question marks)?"""
    out = regraded["out"]
    state = ReviewStore.of(out).read()
    assert state.mark("ada_correct", "p1").points == 0.25
    assert state.mark("ben_mistakes", "p2").points == 2.0
    book = read_csv(out / "gradebook.csv").set_index("student")
    assert book.loc["ada_correct", "p1"] == 0.25
    assert book.loc["dora_partial", "p1"] == 0.5
    assert book.loc["ben_mistakes", "p2"] == 2.0
    ada = json.loads((out / "results" / "ada_correct.json").read_text())
    assert ada["questions"]["p1"]["override"]["autograded"] == 1
    assert set(state.flags) == {("ada_correct", "p1"), ("dora_partial", "p1")}
    flag = state.flags[("ada_correct", "p1")]
    assert flag.old["points"] == 0 and flag.new["points"] == 1 and "p1" in flag.reason
    rows = read_csv(out / "regrade-p1.csv", keep_default_na=False).set_index("student")
    assert rows.loc["ada_correct", "human_mark"] == "yes"
    assert rows.loc["ada_correct", "final_points"] == 0.25
    assert rows.loc["finn_zip", "human_mark"] == "no"
    actions = [c.action for c in ReviewStore.of(out).history(student="ada_correct")]
    assert "flagged for review" in actions


def test_the_terminal_shows_the_changes(regraded):
    """Does the CLI print the changed answers, the flags and where the file is?"""
    output = regraded["output"]
    assert "Regrade of p1" in output and "gus" in output and "yes, flagged" in output
    assert "flagged:   2 answer(s)" in output
    assert str(regraded["out"] / "regrade-p1.csv") in output


def test_a_plain_rerun_reuses_every_result(regraded, copy):
    """After a --question regrade, does a plain rerun reuse every cached result and rewrite the
    same gradebook?"""
    book = (copy / "gradebook.csv").read_bytes()
    run = grading.grade(
        submissions=regraded["subs"],
        out=copy,
        assignment=TINY,
        jobs=2,
        overrides=regraded["overrides"],
    )
    assert run.reused == len(run.results) == 7
    assert (copy / "gradebook.csv").read_bytes() == book


def test_the_flag_shows_in_the_app_and_a_ta_clears_it(copy):
    """Is the flag on the needs-attention page and the student page, and does clearing it over
    HTTP remove it, record it in the audit trail and leave the other flag?"""
    app = create_app(copy, token=TOKEN, user="tess")
    with TestClient(app, base_url=BASE, follow_redirects=True) as client:
        assert client.get(f"/?token={TOKEN}").status_code == 200
        page = client.get("/attention").text
        assert "Flagged by a regrade" in page and "regrade of p1: autograded 0 -&gt; 1" in page
        assert "/s/ada_correct" in page and "/s/dora_partial" in page
        assert "Flagged for review" in client.get("/s/ada_correct").text
        response = client.post(
            "/flag/ada_correct/p1",
            data={"csrf": app.state.ctx.guard.csrf, "next": "/attention"},
            headers={"Origin": BASE},
        )
        assert response.status_code == 200 and "review flag cleared" in response.text
        assert "Flagged for review" not in client.get("/s/ada_correct").text
        forged = client.post(
            "/flag/dora_partial/p1", data={"csrf": "wrong"}, headers={"Origin": BASE}
        )
        assert forged.status_code == 403
    app.state.ctx.recollator.flush(timeout=60)
    store = ReviewStore.of(copy)
    assert set(store.read().flags) == {("dora_partial", "p1")}
    cleared = store.history(student="ada_correct")[0]
    assert (cleared.action, cleared.who, cleared.question) == ("flag cleared", "tess", "p1")


def test_without_question_a_changed_check_regrades_everything(graded, tmp_path):
    """Does a plain rerun after the checks changed (no --question) grade every submission?"""
    out = Path(shutil.copytree(graded["out"], tmp_path / "out"))
    run = grading.grade(submissions=graded["subs"], out=out, assignment=TINY, jobs=2)
    assert run.reused == 0


def test_ctrl_c_during_a_regrade_leaves_the_outputs_as_they_were(graded, tmp_path):
    """Does a stop during a regrade write no output, no changes file and no flag?"""
    out = Path(shutil.copytree(graded["out"], tmp_path / "out"))
    before = snapshot(out)
    history = len(ReviewStore.of(out).history())

    def progress(submissions):
        return lambda result: interrupts.request_stop(signal.SIGINT)

    with pytest.raises(grading.GradingInterrupted):
        grading.grade(
            submissions=graded["subs"],
            out=out,
            assignment=TINY,
            jobs=1,
            force=True,
            questions=("p1",),
            progress=progress,
        )
    interrupts.reset()
    assert snapshot(out) == before
    assert not (out / "regrade-p1.csv").exists()
    assert len(ReviewStore.of(out).history()) == history and not ReviewStore.of(out).read().flags


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--force", "--question", "p9"),
            "error: --question: no question 'p9' in tiny; its questions are p1, p2",
        ),
        (
            ("--question", "p1"),
            "error: --question regrades that question for every submission: add --force",
        ),
    ],
    ids=["unknown", "no-force"],
)
def test_bad_question_options_are_one_line_errors(graded, tmp_path, caplog, args, message):
    """Is an unknown --question id, or --question without --force, refused with one line that
    says what to do, before anything is graded or written, and before any warning about the
    submissions?"""
    subs = tmp_path / "subs"
    shutil.copytree(graded["subs"], subs)
    (subs / "zed_broken.ipynb").write_text("{ not a notebook", encoding="utf-8")
    out = tmp_path / "out"
    result = regrade_cli(subs, out, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not [r for r in caplog.records if "zed_broken" in r.getMessage()]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_the_judge_judges_only_the_chosen_question(graded):
    """Does the judge with questions=("p1",) judge p1 and leave p2 unjudged (missing)?"""
    (ada,) = [s for s in discover(graded["subs"]) if s.student == "ada_correct"]
    result = grade_submission(ada, pack=TINY, questions=("p1",))
    assert result["questions"]["p1"]["score"] == 1
    assert result["questions"]["p2"]["tags"] == ["missing"]


def test_merge_keeps_the_other_entries_and_an_error_row_replaces_the_result():
    """Does a merge take only the chosen entries (total recomputed, notes kept), and does a
    fresh error row stand as it is?"""
    previous = {
        "student": "ann",
        "status": "graded",
        "total": 1.0,
        "questions": {"p1": {"score": 0.0}, "p2": {"score": 1.0, "feedback": "kept"}},
        "notes": ["cell 2 was interrupted"],
    }
    fresh = {
        "student": "ann",
        "status": "graded",
        "total": 1.0,
        "questions": {"p1": {"score": 1.0}, "p2": {"score": 0.0, "tags": ["missing"]}},
    }
    merged = merge(previous, fresh, questions=("p1",))
    assert merged["questions"] == {"p1": {"score": 1.0}, "p2": previous["questions"]["p2"]}
    assert merged["total"] == 2.0 and merged["notes"] == ["cell 2 was interrupted"]
    error = {**fresh, "status": "error"}
    assert merge(previous, error, questions=("p1",)) is error
    assert merge(None, fresh, questions=("p1",)) is fresh


def test_a_big_regrade_prints_twenty_rows_and_points_to_the_file(capsys, tmp_path):
    """With more changes than the terminal shows, are the first 20 printed, then "and N more,
    see FILE"?"""
    from autograder.cli import REGRADE_ROWS, _report_regrade
    from autograder.regrade import Change, RegradeReport

    changes = tuple(
        Change(f"s{i:02d}", "p1", "graded", "graded", 0.0, 1.0, ("scaled",), ())
        for i in range(REGRADE_ROWS + 5)
    )
    path = tmp_path / "regrade-p1.csv"
    _report_regrade(RegradeReport(("p1",), changes, path, regraded=30, carried=30))
    printed = capsys.readouterr().out
    assert "s19" in printed and "s20" not in printed
    assert f"... and 5 more, see {path}" in printed
