"""Tests for autograder.feedback: the students' Markdown and HTML feedback files."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder.checks.tags import hint
from autograder.feedback import STATUS_EXPLANATIONS, FeedbackError, write_feedback
from autograder.pack import Pack, load
from autograder.results import CaseOutcome, empty_result, file_stem, graded_result
from helpers import TINY, check_golden
from pack_support import failing, first, graded, last

PACK = load("math_primer")
"""Exercise 2: the golden pages are its hand-checked feedback (its labels, messages, hints)."""

GOLDEN = Path(__file__).parent / "golden" / "feedback"
HOSTILE = "<img src=x onerror=alert(1)>"


def all_passed(pack: Pack = PACK) -> dict[str, list[CaseOutcome]]:
    return {
        q: [CaseOutcome(c, p, True) for c, p in cases.items()] for q, cases in pack.cases.items()
    }


def ben() -> dict:
    """Exercise 2's graded result of the golden pages: mistakes, advice, an interrupted cell and
    an isolation note."""
    outcomes = all_passed()
    outcomes["q1a"] = [
        CaseOutcome("typical", 0.75, True),
        CaseOutcome(
            "edge",
            0.25,
            False,
            ("edge_case",),
            "`jacobian_Wx` on W of shape (1, 4): got shape (4,), expected shape (1, 4). "
            f"Hint: {hint(('edge_case',))}",
        ),
    ]
    return graded_result(
        "ben",
        outcomes,
        advice={"q3": "Advice (no points deducted): prefer `np.linalg.solve` to `inv`."},
        notes=["cell 4 was interrupted after 10 s", "isolation: none (not root)"],
        pack=PACK,
    )


def ben_of(pack: Pack) -> dict:
    """A graded result of any pack with a mistake, advice, an interrupted cell and an isolation
    note."""
    return graded(
        pack,
        "ben",
        {first(pack).id: ["edge_case"]},
        advice={last(pack).id: "Advice (no points deducted): prefer `np.linalg.solve`."},
        notes=["cell 4 was interrupted after 10 s", "isolation: none (not root)"],
    )


class _Collector(HTMLParser):
    """Collects start tags and text of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


def test_writes_md_and_html_per_student(any_pack: Pack, tmp_path: Path) -> None:
    """Is there one .md and one .html per result under OUT/feedback, sorted by student?"""
    paths = write_feedback(
        [ben_of(any_pack), graded_result("ann", all_passed(any_pack), pack=any_pack)],
        tmp_path,
        pack=any_pack,
    )
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "feedback/ann.md",
        "feedback/ann.html",
        "feedback/ben.md",
        "feedback/ben.html",
    ]


@pytest.mark.parametrize("name", ["ben.md", "ben.html"])
def test_matches_golden_file(tmp_path: Path, name: str, request: pytest.FixtureRequest) -> None:
    """Does the feedback of a result with mistakes, advice and notes match its golden file?"""
    write_feedback([ben()], tmp_path, pack=PACK)
    check_golden(request, GOLDEN / name, (tmp_path / "feedback" / name).read_bytes())


def test_two_calls_give_byte_identical_files(any_pack: Pack, tmp_path: Path) -> None:
    """Do two calls write byte-identical files?"""
    results = [ben_of(any_pack), empty_result("cat", "invalid", "not a notebook", pack=any_pack)]
    first = write_feedback(results, tmp_path / "a", pack=any_pack)
    second = write_feedback(list(reversed(results)), tmp_path / "b", pack=any_pack)
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_scores_messages_hints_and_notes_are_shown(tmp_path: Path) -> None:
    """Does the feedback show score/possible per question, messages, hints and notes?"""
    # Exercise 2's golden result: the texts checked are its messages and hints.
    write_feedback([ben()], tmp_path, pack=PACK)
    md = (tmp_path / "feedback" / "ben.md").read_text(encoding="utf-8")
    assert "**Total: 11.75 / 12 points**" in md
    assert "### q1a (2-1 a): 0.75 / 1" in md
    assert "got shape (4,), expected shape (1, 4)" in md
    assert "avoid np.squeeze" in md  # the edge_case hint
    assert "prefer `np.linalg.solve`" in md
    assert "cell 4 was interrupted after 10 s" in md


def test_judge_internals_are_not_shown(any_pack: Pack, tmp_path: Path) -> None:
    """Are isolation notes and an error row's crash text kept out of the feedback?"""
    crashed = empty_result(
        "dan", "error", "grader crashed: OSError('/srv/hidden/tests.py')", pack=any_pack
    )
    write_feedback([ben_of(any_pack), crashed], tmp_path, pack=any_pack)
    for path in (tmp_path / "feedback").iterdir():
        text = path.read_text(encoding="utf-8")
        assert "isolation" not in text
        assert "/srv/hidden" not in text and "crashed" not in text


def test_no_hidden_test_code_reaches_students(any_pack: Pack, tmp_path: Path) -> None:
    """Does nothing that looks like the hidden tests (assert_case, CASES, oracle) appear?"""
    write_feedback([ben_of(any_pack)], tmp_path, pack=any_pack)
    for path in (tmp_path / "feedback").iterdir():
        text = path.read_text(encoding="utf-8")
        for secret in ("assert_case", "CASES", "oracle", "def ", "import "):
            assert secret not in text, (path.name, secret)


@pytest.mark.parametrize("status", ["timeout", "error", "invalid", "missing"])
def test_every_status_is_explained(any_pack: Pack, tmp_path: Path, status: str) -> None:
    """Does a row that was not graded normally say what its status means, in both files?"""
    write_feedback(
        [empty_result("cat", status, "the notebook ran past 300 s", pack=any_pack)],
        tmp_path,
        pack=any_pack,
    )
    for suffix in ("md", "html"):
        text = (tmp_path / "feedback" / f"cat.{suffix}").read_text(encoding="utf-8")
        assert f"Status: {status}." in text
        assert STATUS_EXPLANATIONS[status].split(".")[0] in text


def test_invalid_reason_is_shown_once(any_pack: Pack, tmp_path: Path) -> None:
    """Is an invalid row's reason shown once, not repeated under every question?"""
    write_feedback(
        [empty_result("cat", "invalid", "the file is empty", pack=any_pack)],
        tmp_path,
        pack=any_pack,
    )
    md = (tmp_path / "feedback" / "cat.md").read_text(encoding="utf-8")
    assert md.count("the file is empty") == 1


def test_hostile_feedback_is_escaped_in_html(any_pack: Pack, tmp_path: Path) -> None:
    """Is <script> in a student id, a message or a note escaped into text, not markup?"""
    outcomes = all_passed(any_pack)
    outcomes[last(any_pack).id] = failing(
        any_pack, last(any_pack).id, ("exception",), "raised '<script>alert(1)</script>'"
    )
    result = graded_result(
        HOSTILE, outcomes, notes=['cell 2 printed "</ul><script>x</script>"'], pack=any_pack
    )
    write_feedback([result], tmp_path, pack=any_pack)
    page = parse(tmp_path / "feedback" / f"{file_stem(HOSTILE)}.html")
    assert "script" not in page.tags and "img" not in page.tags
    text = "".join(page.text)
    assert HOSTILE in text and "<script>alert(1)</script>" in text
    md = (tmp_path / "feedback" / f"{file_stem(HOSTILE)}.md").read_text(encoding="utf-8")
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md


def test_html_is_self_contained(any_pack: Pack, tmp_path: Path) -> None:
    """Does the HTML load nothing from elsewhere (no scripts, links, images, remote URLs)?"""
    write_feedback([ben_of(any_pack)], tmp_path, pack=any_pack)
    html = (tmp_path / "feedback" / "ben.html").read_text(encoding="utf-8")
    page = parse(tmp_path / "feedback" / "ben.html")
    assert not {"script", "link", "img", "iframe"} & set(page.tags)
    assert "http" not in html and 'charset="utf-8"' in html


@pytest.mark.parametrize("student", ["", "  ", None])
def test_missing_student_ids_raise(any_pack: Pack, tmp_path: Path, student: str | None) -> None:
    """Does a result without a student id raise FeedbackError instead of writing a nameless file?"""
    result = graded_result("x", all_passed(any_pack), pack=any_pack)
    result["student"] = student
    with pytest.raises(FeedbackError):
        write_feedback([result], tmp_path, pack=any_pack)


@pytest.mark.parametrize("student", ["..", "a/b", "a\\b", "../../x", " ", "z" * 300, "bad\udcff"])
def test_path_like_student_ids_get_safe_file_names(
    any_pack: Pack, tmp_path: Path, student: str
) -> None:
    """Does an id that is no plain file name get its feedback in feedback/, under a safe name?"""
    if not student.strip():
        student = f"{student}.ipynb"  # intake gives a blank stem its whole file name as id
    result = graded_result("x", all_passed(any_pack), pack=any_pack)
    result["student"] = student
    paths = write_feedback([result], tmp_path / "out", pack=any_pack)
    assert [p.parent for p in paths] == [tmp_path / "out" / "feedback"] * 2
    assert all(len(p.name.encode()) <= 255 and "~" in p.name for p in paths)
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == sorted(
        p.name for p in paths
    )


def test_duplicate_students_raise(any_pack: Pack, tmp_path: Path) -> None:
    """Do two results for one student raise instead of overwriting each other's feedback?"""
    with pytest.raises(FeedbackError, match="ann"):
        write_feedback(
            [graded_result("ann", all_passed(any_pack), pack=any_pack)] * 2, tmp_path, pack=any_pack
        )


# --- any pack: the tiny fixture pack ----------------------------------------------------------


def test_feedback_of_another_pack_uses_its_title_labels_and_hints(tmp_path):
    """For the tiny pack, does the feedback carry its title, its sheet labels, the hint of its
    own tag and the manual derivation point of p2 (possible, not yet scored)?"""
    text = "`chain_gradient` on x of shape (3,) is wrong. Hint: " + hint(
        ("missing_chain",), TINY.vocabulary
    )
    outcomes = {
        "p1": [
            CaseOutcome("typical", 0.5, False, ("missing_chain",), text),
            CaseOutcome("edge", 0.5, True),
        ],
        "p2": [CaseOutcome("dX", 1.0, True), CaseOutcome("dW", 1.0, True)],
    }
    write_feedback([graded_result("ann", outcomes, pack=TINY)], tmp_path, pack=TINY)
    md = (tmp_path / "feedback" / "ann.md").read_text(encoding="utf-8")
    assert md.startswith("# Tiny Sheet: feedback for ann")
    assert "| p1 (T-1) | 0.5 / 1 |" in md and "| p2 (T-2) | 2 / 3 |" in md  # + 1 manual point
    assert "Your derivation: up to 1 point, marked by a TA" in md
    assert "by the chain rule the gradient is f(x) f'(x)" in md
    assert "Tiny Sheet: feedback for ann" in (tmp_path / "feedback" / "ann.html").read_text()
