"""The master notebook's generated cells (tests, derivations) and the check that they agree.

Points and cases are written once, in the spec. Each question's test cells in the Otter Assign
master are generated from it (:func:`test_cells`): one public form check worth 0 points (its
``success_message`` says what it checked, see :data:`autograder.checks.runner.FORM_PASSED`), then
one hidden cell per case, named ``test_<question>_<case>``. The engines map Otter's test cases
back to cases by these names (:func:`case_of_test`), never by position.

A question declared with ``derivation=True`` gets its "Your derivation" cells
(:func:`derivation_cells`), just before its ``# BEGIN SOLUTION`` cell: a heading cell
``#### Your derivation (<sheet label>)`` (question text, so Otter Assign locks it in the student
notebook) and a Markdown answer cell inside ``# BEGIN PROMPT`` / ``# END PROMPT`` (Otter keeps it
editable and tags it ``otter_answer_cell``; it is never graded by Otter). The answer cell's
metadata ``{"derivation": "<question id>"}`` (:data:`DERIVATION_KEY`) is the stable marker the
review app and the pre-submit check find it by; the heading is the fallback for a cell a
student re-created without it.

:func:`check_master` compares a master with its spec (questions, points, test cells, answer
functions, derivation cells) and :func:`sync_master` rewrites the generated cells from the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from ..checks.runner import FORM_PASSED
from ..errors import MasterDrift
from .spec import Pack, Question

_CONFIG = re.compile(
    r'^"""\s*# BEGIN TEST CONFIG\s*\n(?P<config>.*?)\n"""\s*# END TEST CONFIG\s*\n(?P<body>.*)$',
    re.DOTALL,
)


def test_name(question: str, case: str) -> str:
    """The name of a case's test function (Otter's test case name): ``test_<question>_<case>``."""
    return f"test_{question}_{case}"


CASE_LINE = "case:"
"""The judge plugin ends each hidden test's message with ``case: <name>`` (Otter's own test case
names are positional, ``q1 - 2``), so outputs that hold messages only can be matched by name."""


def case_of_test(question: Question, test: str) -> str | None:
    """The case an Otter test case belongs to: from its function's name (``test_q1_typical``,
    given as the name or inside the test's source) or from a ``case: <name>`` line of its
    message; None for the public form check or anything that names no case of the question."""
    names = re.findall(rf"\btest_{re.escape(question.id)}_(\w+)", test)
    names += [
        line.split(":", 1)[1].strip()
        for line in test.splitlines()
        if line.strip().startswith(CASE_LINE)
    ]
    found = [n for n in names if n in question.case_points]
    return found[-1] if found else None


DERIVATION_KEY = "derivation"
"""Metadata key of a "Your derivation" answer cell; its value is the question id."""
DERIVATION_LABEL = "Your derivation"
"""The heading's text before the sheet label."""
DERIVATION_PLACEHOLDER = (
    "_Type your derivation here, replacing this text (Markdown; formulas in LaTeX between "
    "`$...$`)._"
)
"""The answer cell as handed out; a cell still reading this is an empty derivation."""
_LABEL = re.compile(rf"^\s*#+\s*{DERIVATION_LABEL}\b", re.IGNORECASE)


def derivation_heading(question: Question) -> str:
    """The heading cell's text: ``#### Your derivation (<sheet label>)``."""
    return f"#### {DERIVATION_LABEL} ({question.sheet})"


def derivation_cells(question: Question) -> list[nbformat.NotebookNode]:
    """A question's "Your derivation" cells in the master (see the module docstring); [] for a
    question without ``derivation``."""
    if not question.derivation:
        return []
    return [
        nbformat.v4.new_markdown_cell(derivation_heading(question)),
        nbformat.v4.new_raw_cell("# BEGIN PROMPT"),
        nbformat.v4.new_markdown_cell(
            DERIVATION_PLACEHOLDER, metadata={DERIVATION_KEY: question.id}
        ),
        nbformat.v4.new_raw_cell("# END PROMPT"),
    ]


def derivation_text(cell: dict) -> str:
    """What a student wrote in a derivation answer cell ("" for the untouched placeholder)."""
    source = cell.get("source") or ""
    source = "".join(source) if isinstance(source, list) else str(source)
    return "" if source.strip() in ("", DERIVATION_PLACEHOLDER) else source.strip()


def derivation_cell_of(notebook: nbformat.NotebookNode, question: str) -> int | None:
    """The index of the answer cell marked for that question in a (student) notebook, or None."""
    for index, cell in enumerate(notebook.get("cells") or []):
        meta = cell.get("metadata") or {}
        if cell.get("cell_type") == "markdown" and meta.get(DERIVATION_KEY) == question:
            return index
    return None


def _signature(cell) -> tuple[str, str, object]:
    return (cell.cell_type, cell.source.strip(), (cell.get("metadata") or {}).get(DERIVATION_KEY))


def _cell(name: str, points: float, hidden: bool, call: str, functions: tuple[str, ...]) -> str:
    params = ", ".join(functions)
    config = f"points: {points!r}\nhidden: {'true' if hidden else 'false'}"
    if not hidden:
        config += f'\nsuccess_message: "{FORM_PASSED}"'
    checker = "assert_case" if hidden else "assert_form"
    return (
        f'""" # BEGIN TEST CONFIG\n{config}\n""" # END TEST CONFIG\n'
        f"def {name}({params}):\n"
        f"    from autograder.checks import {checker}\n"
        f"    {checker}({call}, {params})\n\n"
        f"{name}({params})"
    )


def test_cells(question: Question) -> list[str]:
    """The sources of a question's test cells: the public form check, then one per case."""
    functions = question.function_names
    cells = [_cell(f"test_{question.id}_form", 0, False, f'"{question.id}"', functions)]
    for case in question.cases:
        call = f'"{question.id}", "{case.name}"'
        cells.append(
            _cell(test_name(question.id, case.name), float(case.points), True, call, functions)
        )
    return cells


@dataclass(frozen=True)
class _Block:
    """One ``BEGIN QUESTION`` ... ``END QUESTION`` block of a master notebook."""

    name: str
    points: object
    tests: list[int]
    """Indices of the code cells between ``BEGIN TESTS`` and ``END TESTS``."""
    sources: list[str]
    """Sources of the block's code cells outside the tests (the solution cells)."""
    tests_marker: list[int]
    """Index of the ``BEGIN TESTS`` cell, when there is one."""
    derivation: list[int]
    """Indices of its derivation cells: headings, ``BEGIN/END PROMPT`` and the prompts' cells."""
    solution_marker: list[int]
    """Indices of its ``BEGIN SOLUTION`` cells."""


def _marker(cell, text: str) -> bool:
    return cell.cell_type == "raw" and cell.source.strip().lower().startswith(text)


def _blocks(nb: nbformat.NotebookNode, where: str) -> list[_Block]:
    blocks: list[_Block] = []
    current: _Block | None = None
    in_tests = in_prompt = False
    for index, cell in enumerate(nb.cells):
        if _marker(cell, "# begin question"):
            try:
                config = yaml.safe_load(cell.source.split("\n", 1)[1]) or {}
            except (IndexError, yaml.YAMLError) as exc:
                raise MasterDrift(
                    f"{where}: cell {index + 1}: bad question config ({exc})"
                ) from None
            current = _Block(str(config.get("name")), config.get("points"), [], [], [], [], [])
            blocks.append(current)
        elif _marker(cell, "# end question"):
            current = None
        elif current is not None and (
            in_prompt
            or _marker(cell, "# begin prompt")
            or (cell.cell_type == "markdown" and _LABEL.match(cell.source))
            or DERIVATION_KEY in (cell.get("metadata") or {})
        ):
            current.derivation.append(index)
            in_prompt = _marker(cell, "# begin prompt") or (
                in_prompt and not _marker(cell, "# end prompt")
            )
        elif current is not None and _marker(cell, "# begin solution"):
            current.solution_marker.append(index)
        elif _marker(cell, "# begin tests"):
            in_tests = True
            if current is not None:
                current.tests_marker.append(index)
        elif _marker(cell, "# end tests"):
            in_tests = False
        elif current is not None and cell.cell_type == "code":
            if in_tests:
                current.tests.append(index)
            else:
                current.sources.append(cell.source)
    return blocks


def _same_cell(got: str, expected: str) -> bool:
    g, e = _CONFIG.match(got.strip()), _CONFIG.match(expected.strip())
    if g is None or e is None:
        return False
    try:
        got_config, expected_config = yaml.safe_load(g["config"]), yaml.safe_load(e["config"])
    except yaml.YAMLError:
        return False
    if not isinstance(got_config, dict):
        return False
    same_points = float(got_config.get("points", -1)) == float(expected_config["points"])
    same_hidden = bool(got_config.get("hidden", False)) == expected_config["hidden"]
    same_hidden &= got_config.get("success_message") == expected_config.get("success_message")
    body = [line.rstrip() for line in g["body"].strip().splitlines()]
    return same_points and same_hidden and body == e["body"].strip().splitlines()


def master_path(pack: Pack) -> Path:
    """The pack's master notebook ``<folder>/<name>.ipynb``."""
    if pack.folder is None:
        raise MasterDrift(f"pack {pack.name!r} has no folder (built in Python): no master")
    return pack.folder / f"{pack.name}.ipynb"


def drift(pack: Pack, nb: nbformat.NotebookNode, *, where: str = "master") -> list[str]:
    """Every disagreement between a master notebook and the spec, in words ([] when none)."""
    problems = []
    blocks = {b.name: b for b in _blocks(nb, where)}
    order = [b.name for b in _blocks(nb, where)]
    if order != list(pack.question_ids):
        problems.append(f"questions are {order}, the spec declares {list(pack.question_ids)}")
    for question in pack.questions:
        block = blocks.get(question.id)
        if block is None:
            continue
        try:
            written = block.points
            points = float(written) if isinstance(written, (int, float, str)) else None
        except (TypeError, ValueError):
            points = None
        if points != float(question.points):
            problems.append(
                f"{question.id}: the master gives {block.points!r} points, the spec "
                f"{question.points:g}"
            )
        source = "\n".join(block.sources)
        for name in question.function_names:
            if not re.search(rf"^\s*def {re.escape(name)}\(", source, re.MULTILINE):
                problems.append(f"{question.id}: no `def {name}(` in its answer cell")
        expected = test_cells(question)
        got = [nb.cells[i].source for i in block.tests]
        if len(got) != len(expected):
            problems.append(
                f"{question.id}: {len(got)} test cells, the spec needs {len(expected)} (a form "
                f"check and one per case: {', '.join(question.case_points)})"
            )
        for k, (g, e) in enumerate(zip(got, expected), start=1):
            if not _same_cell(g, e):
                problems.append(f"{question.id}: test cell {k} should read:\n{e}")
        problems += _derivation_drift(question, block, nb)
    return problems


def _derivation_drift(question: Question, block: _Block, nb: nbformat.NotebookNode) -> list[str]:
    expected = [_signature(c) for c in derivation_cells(question)]
    got = [_signature(nb.cells[i]) for i in block.derivation]
    if got == expected:
        return []
    if not expected:
        return [
            (
                f'{question.id}: the master has "{DERIVATION_LABEL}" cells, the spec declares '
                "none (derivation=False); remove them or declare derivation=True"
            )
        ]
    where = "missing" if not got else "not as generated"
    return [
        (
            f'{question.id}: its "{DERIVATION_LABEL}" cells are {where}; the spec declares them '
            "(derivation=True): `sync-tests` writes them before its BEGIN SOLUTION cell"
        )
    ]


def check_master(pack: Pack) -> Path:
    """Check the pack's master against its spec; return its path.

    Raises:
        MasterDrift: the master is missing or disagrees with the spec; the message lists every
            disagreement and how the test cells should read (``sync_master`` writes them).
    """
    path = master_path(pack)
    if not path.is_file():
        raise MasterDrift(f"master notebook not found: {path}")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook
        raise MasterDrift(f"{path}: not a readable notebook ({exc})") from None
    problems = drift(pack, nb, where=str(path))
    if problems:
        raise MasterDrift(
            f"{path} disagrees with its spec.py ({len(problems)} problem(s)):\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return path


def sync_master(pack: Pack) -> list[str]:
    """Rewrite each question's test cells and derivation cells in the master from the spec
    (questions, points and answer cells are left to the author); return the ids of the
    questions that changed."""
    path = master_path(pack)
    nb = nbformat.read(str(path), as_version=4)
    changed = []
    cells = list(nb.cells)
    for block in reversed(_blocks(nb, str(path))):
        if block.name not in pack.by_id:
            continue
        question = pack.question(block.name)
        derivations_changed = bool(_derivation_drift(question, block, nb))
        expected = test_cells(question)
        got = [cells[i].source for i in block.tests]
        tests_changed = not (len(got) == len(expected) and all(map(_same_cell, got, expected)))
        if tests_changed:
            _replace_tests(cells, block, expected, path)
        if derivations_changed:
            _replace_derivations(cells, block, question, path)
        if tests_changed or derivations_changed:
            changed.append(block.name)
    if changed:
        nb.cells = cells
        nbformat.write(nb, str(path))
    return sorted(changed)


def _replace_tests(cells: list, block: _Block, expected: list[str], path: Path) -> None:
    """Replace the block's test cells (in place; the block's later cells only move)."""
    if block.tests:
        start, stop = block.tests[0], block.tests[-1] + 1
    elif block.tests_marker:
        start = stop = block.tests_marker[0] + 1
    else:
        raise MasterDrift(f"{path}: {block.name} has no BEGIN TESTS / END TESTS cells")
    cells[start:stop] = [nbformat.v4.new_code_cell(source) for source in expected]


def _replace_derivations(cells: list, block: _Block, question: Question, path: Path) -> None:
    """Replace the block's derivation cells by the generated ones, before its BEGIN SOLUTION
    (call after :func:`_replace_tests`: the derivation cells come before the tests)."""
    if not block.solution_marker:
        raise MasterDrift(f"{path}: {block.name} has no BEGIN SOLUTION cell")
    at = block.solution_marker[0] - sum(1 for i in block.derivation if i < block.solution_marker[0])
    for index in sorted(block.derivation, reverse=True):
        del cells[index]
    cells[at:at] = derivation_cells(question)
