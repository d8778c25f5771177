"""Builders for the machinery's tests that work for any pack: results, outcomes and answers.

The tests of the machinery (gradebook, exports, feedback, report, overrides, faults, red team)
run on the tiny fixture pack (``tests/fixtures/assignments/tiny``) and, where cheap, on Exercise 2
too (the ``any_pack`` fixture of ``conftest.py``). Question ids, columns, points and function
signatures come from the pack object, never from literals, so a test does not depend on one
sheet's content. Sample answers are data: ``solutions/<name>/samples.py`` beside the pack.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.pack import Pack, Question, load
from autograder.results import CaseOutcome, graded_result
from autograder.samples import Samples, fill, load_samples

FIXTURE_PACKS = Path(__file__).parent / "fixtures" / "assignments"
"""Packs that exist only for the tests (their solutions are in ``tests/fixtures/solutions``)."""
PACK_NAMES = ("math_primer", "tiny")
"""The packs the machinery's tests run on: Exercise 2 and the tiny fixture pack."""


def pack_named(name: str) -> Pack:
    """A shipped pack by name, or a fixture pack from ``tests/fixtures/assignments``."""
    fixture = FIXTURE_PACKS / name
    return load(fixture) if fixture.is_dir() else load(name)


_SAMPLES: dict[str, Samples] = {}


def samples_of(pack: Pack) -> Samples:
    """The pack's sample answers (loaded once per pack)."""
    if pack.name not in _SAMPLES:
        _SAMPLES[pack.name] = load_samples(pack)
    return _SAMPLES[pack.name]


def mistake(pack: Pack, tag: str, question: str | None = None) -> tuple[str, str]:
    """(question, source) of the pack's first sample mistake with that tag (on that question)."""
    for q, t, source in samples_of(pack).mistakes:
        if t == tag and question in (None, q):
            return q, source
    raise LookupError(f"{pack.name} has no sample mistake tagged {tag!r} ({question or 'any'})")


def answer(pack: Pack, question: str, body: str) -> str:
    """An answer cell for the question: its first function's ``def`` line and ``body``.

    The signature is the spec's, so a hostile or faulty body needs no per-pack source.
    """
    target = pack.question(question).functions[0]
    lines = body.rstrip("\n").splitlines()
    indented = "\n".join(f"    {line}" if line else "" for line in lines)
    return f"def {target.name}({', '.join(target.params)}):\n{indented}\n"


def negated(pack: Pack, question: str) -> str:
    """An answer of the right shape and type that is wrong on every part: the pack's sample
    correct answer with every array its functions return negated (the sign flipped).

    Wrong by value only, so a tampered comparison or a stolen reference would show as a gain.
    """
    cell = samples_of(pack).correct[question]
    for target in pack.question(question).functions:
        name, params = target.name, ", ".join(target.params)
        cell += (
            f"\n_right_{name} = {name}\n\n\ndef {name}({params}):\n"
            f"    out = _right_{name}({params})\n"
            "    if isinstance(out, tuple):\n"
            "        return tuple(-__import__('numpy').asarray(v, dtype=float) for v in out)\n"
            "    return -__import__('numpy').asarray(out, dtype=float)\n"
        )
    return cell


def first(pack: Pack) -> Question:
    return pack.questions[0]


def last(pack: Pack) -> Question:
    return pack.questions[-1]


def all_passed(pack: Pack) -> dict[str, list[CaseOutcome]]:
    """Every case of every question passed."""
    return {
        q: [CaseOutcome(c, p, True) for c, p in cases.items()] for q, cases in pack.cases.items()
    }


def failing(pack: Pack, question: str, tags: tuple[str, ...], text: str = "wrong") -> list:
    """The question's cases with the first one failed (``tags``, ``text``), the others passed."""
    [head, *rest] = pack.question(question).cases
    return [
        CaseOutcome(head.name, head.points, False, tags, text),
        *(CaseOutcome(c.name, c.points, True) for c in rest),
    ]


def first_case_points(pack: Pack, question: str) -> float:
    """The points :func:`failing` takes off that question."""
    return pack.question(question).cases[0].points


def graded(pack: Pack, student: str, mistakes: dict[str, list[str]] | None = None, **kw) -> dict:
    """A graded result: each question in ``mistakes`` fails its first case with those tags."""
    outcomes = all_passed(pack)
    for question, tags in (mistakes or {}).items():
        outcomes[question] = failing(pack, question, tuple(tags))
    return graded_result(student, outcomes, pack=pack, **kw)


def scored(pack: Pack, student: str, status: str = "graded", **scores: float) -> dict:
    """A result dict as the batch runner writes it, with the given question scores (others 0)."""
    questions = {
        name: {"score": score, "possible": pack.question(name).possible, "tags": [], "feedback": ""}
        for name, score in scores.items()
    }
    return {
        "student": student,
        "status": status,
        "total": sum(scores.values()),
        "possible": pack.total_points,
        "questions": questions,
    }


def full_marks(pack: Pack, student: str) -> dict:
    """Every question at its possible points (autograded and manual)."""
    return scored(pack, student, **{q.id: q.possible for q in pack.questions})


# --- attack notebooks (red team, sandbox, normal-user isolation) ----------------------------------


def wrong_answers(pack: Pack) -> dict[str, str]:
    """One wrong answer per question, right in shape, wrong by value (:func:`negated`): what an
    attack notebook answers besides its attack, so a tampered comparison would show as a gain."""
    return {q: negated(pack, q) for q in pack.question_ids}


def report_epilogue(pack: Pack) -> str:
    """An attack's last cell: the pack's last question raises with the attack's ``REPORT`` (a list
    the attack's prelude defines), so the report reaches the feedback of that question."""
    return answer(pack, last(pack).id, 'raise RuntimeError("attack report: " + " | ".join(REPORT))')


def with_cells(
    template: nbformat.NotebookNode, answers: dict[str, str], *cells: str, pack: Pack
) -> nbformat.NotebookNode:
    """The pack's template with these answers filled in and code cells appended."""
    nb = fill(template, answers, pack=pack)
    nb.cells.extend(nbformat.v4.new_code_cell(c) for c in cells)
    return nb


def question_scores(result: dict, pack: Pack) -> dict[str, float]:
    """Question id -> score of one result."""
    return {q: result["questions"][q]["score"] for q in pack.question_ids}


def correct_source(pack: Pack) -> str:
    """All the pack's correct sample answers in one cell (a read attack runs it only if its read
    succeeded)."""
    correct = samples_of(pack).correct
    return "\n\n".join(correct[q] for q in pack.question_ids)


def leak_epilogue(pack: Pack) -> str:
    """A read attack's last cell: the correct answers (``CORRECT_SOURCE``) if ``LEAKED``, else
    :func:`report_epilogue`."""
    report = report_epilogue(pack)
    return "if LEAKED:\n    exec(CORRECT_SOURCE, globals())\nelse:\n" + "".join(
        f"    {line}\n" if line else "\n" for line in report.splitlines()
    )


def forged_fields(pack: Pack) -> dict[str, object]:
    """What an attack needs to forge full marks for ``pack``: the notebook's name, the line that
    marks it, the autograded total, and the gradebook's header and full-marks row (CSV lines)."""
    total = pack.autograded_points
    return {
        "notebook": f"{pack.name}.ipynb",
        "marker": f"def {pack.questions[0].functions[0].name}",
        "total": total,
        "header": ",".join(pack.gradebook_columns) + "\n",
        "row": ",".join([*(f"{q.points:g}" for q in pack.questions), f"{total:g}", "100", "graded"])
        + "\n",
    }
