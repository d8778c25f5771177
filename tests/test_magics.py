"""The evaluator's IPython transformer (autograder/judge/magics.py), through the real judge."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.intake import Submission
from autograder.judge import evaluator
from autograder.judge.engine import grade_submission
from autograder.judge.magics import TRANSFORMER, plain_python
from autograder.pack import load, registry
from autograder.samples import load_samples
from helpers import json_of_script

PACK = load("math_primer")


def _scores(prefix: str) -> dict[str, float]:
    """Scores of the correct answers, each cell starting with ``prefix``."""
    cells = [nbformat.v4.new_code_cell(f"{prefix}import numpy as np")]
    cells += [
        nbformat.v4.new_code_cell(f"{prefix}{s}") for s in load_samples(PACK).correct.values()
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    result = grade_submission(Submission("ann", Path("ann.ipynb"), notebook, None), pack=PACK)
    assert result["status"] == "graded", result
    return {q: entry["score"] for q, entry in result["questions"].items()}


def test_cells_with_magics_still_define_their_answers() -> None:
    """With IPython imported only by the evaluators' template, do cells that begin with
    ``%matplotlib inline`` or ``!echo`` still run in the sandbox and define the same answers as
    without them?"""
    plain = _scores("")
    assert sum(plain.values()) > 0
    assert _scores("%matplotlib inline\n") == plain
    assert _scores("!echo ready\n") == plain


def test_a_student_importing_ipython_gets_the_real_package() -> None:
    """With only IPython's transformer in the evaluators' template (not the package's
    ``__init__``), does a student's ``import IPython`` in the sandbox still import the whole
    package, so that cells using it define the same answers?"""
    plain = _scores("")
    imports = "import IPython\nfrom IPython.core.inputtransformer2 import TransformerManager\n"
    uses = "assert callable(IPython.get_ipython) and IPython.core.inputtransformer2\n"
    assert _scores(imports + uses) == plain


def test_the_transformer_leaves_no_ipython_module_behind() -> None:
    """Does loading the transformer leave ``IPython`` out of ``sys.modules`` (a later
    ``import IPython`` runs the real package's ``__init__``), while it still transforms?"""
    found = json_of_script(
        "import json, sys\n"
        "from autograder.judge.magics import TRANSFORMER\n"
        "left = sorted(m for m in sys.modules if m.split('.')[0] == 'IPython')\n"
        "out = TRANSFORMER.transform_cell('%time x = 1\\n')\n"
        "import IPython\n"
        "print(json.dumps({'left': left, 'out': out, 'shell': hasattr(IPython, 'get_ipython')}))"
    )
    assert found == {
        "left": [],
        "out": "get_ipython().run_line_magic('time', 'x = 1')\n",
        "shell": True,
    }


def _corpus() -> list[str]:
    """Cells as students write them: every code cell of the packs' templates, and every sample
    answer (correct, equivalent and wrong)."""
    cells: list[str] = []
    for name in ("math_primer", "backprop"):
        pack = load(name)
        template = nbformat.read(registry.find(name) / f"{pack.name}.ipynb", as_version=4)
        cells += [cell.source for cell in template.cells if cell.cell_type == "code"]
        samples = load_samples(pack)
        cells += list(samples.correct.values())
        cells += [source for forms in samples.equivalent.values() for source in forms]
        cells += [source for _question, _tag, source in samples.mistakes]
    return cells


def _before(source: str) -> str:
    """What the evaluator made of a cell before the shortcut: IPython's transformation, or the
    cell itself where the transformer raised."""
    assert TRANSFORMER is not None
    try:
        return TRANSFORMER.transform_cell(source)
    except Exception:  # noqa: BLE001 - as evaluator.transform
        return source


TRICKY = [
    "",
    "\n",
    "x = 1",
    "x = 1\n",
    "\nx = 1",
    "  x = 1\n  y = 2",
    "x = 1\n   \ny = 2",
    "x = 1\n\t\ny = 2",
    "def f():\n    return 1\n    \n",
    "%matplotlib inline",
    "%%time\nx = 1",
    "!ls",
    "  !ls",
    "x = !ls",
    "x = %time 1",
    "x =\\\n  %time 1",
    "x = 3 % 2",
    "x = '%d' % 3",
    "x = 1 if 2 != 3 else 0",
    "f?",
    "f??",
    "?f",
    "x = 'why?'",
    ",f a b",
    ";f a b",
    "/f a b",
    "x = (1,\n,2)",
    "x = (1\n/2)",
    "x = (1\n% 2)",
    ">>> x = 1\n>>> y = 2",
    "    >>> x = 1",
    "In [1]: x = 1",
    "...: x = 1",
    "def f():\n    ...\n",
    "x = 1\r\n%time 2\r\n",
    "x = 1\rprint(2)",
    "x = 1\x0c%time 2",
    "def f():\n  return 1\n return 2",
    "x = '''\n    \n'''",
    "x = 1 \\\n  + 2",
    "\ufeffx = 1",
    "x = 1  # a = %b",
    "print('In [1]: hi')",
    "a = b = 1",
]
"""Cells at the edges of IPython's syntax: escapes, prompts, indents, blank lines, odd line ends,
an indentation error (the transformer raises)."""


def _runs_as_before(source: str) -> bool:
    """Whether the evaluator runs the same code for ``source`` as before the shortcut: declined,
    or the transformer's text to the character, or a text that does not compile (the evaluator
    then compiles the transformer's text after all)."""
    plain = plain_python(source)
    if plain is None or plain == _before(source):
        return True
    try:
        compile(plain, "<cell>", "exec")
    except SyntaxError:
        return True
    return False


@pytest.mark.parametrize("source", TRICKY)
def test_a_cell_the_shortcut_takes_becomes_the_transformers_python(source: str) -> None:
    """Is every cell the shortcut accepts turned into exactly the Python the evaluator ran before
    (IPython's transformation), to the character (or, where IPython's tokenizer raised, into
    text that does not compile either)?"""
    assert _runs_as_before(source), source


def test_cells_with_ipython_syntax_go_to_the_transformer() -> None:
    """Does the shortcut decline every edge cell that IPython changes (beyond the final
    newline), so that the property above is not met by declining nothing?"""
    changed = [s for s in TRICKY if _before(s) not in (s, s + "\n")]
    assert len(changed) >= 20, changed
    assert all(plain_python(s) is None for s in changed)


def test_the_packs_cells_take_the_shortcut() -> None:
    """Do the packs' template cells and sample answers, plain Python, skip the transformer with
    the transformer's own result?"""
    corpus = _corpus()
    taken = [source for source in corpus if plain_python(source) is not None]
    assert len(taken) >= 0.9 * len(corpus) > 20
    for source in taken:
        assert plain_python(source) == _before(source), source


FRAGMENTS = st.sampled_from(
    [
        "x",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\r",
        "\x0c",
        "=",
        "%",
        "!",
        "?",
        ",",
        ";",
        "/",
        "(",
        ")",
        ">>>",
        "...",
        ":",
        "In [1]: ",
        "1",
        "'",
        '"""',
        "#",
        "\\\n",
        "if x:\n",
        "    ",
        "time",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(FRAGMENTS, max_size=12).map("".join))
def test_the_shortcut_never_differs_from_the_transformer(source: str) -> None:
    """For any cell made of IPython's escapes, prompts, blanks, brackets and line ends, does the
    shortcut either decline it or give exactly what the evaluator ran before?"""
    assert _runs_as_before(source)


INDENTATION_ERRORS = [
    "def f():\n    return 1\n  return 2",
    "if True:\n        x = 1\n    y = 2",
    "x = (1,\n2",
    "def f(:",
]


@pytest.mark.parametrize("source", INDENTATION_ERRORS)
def test_a_cell_that_does_not_compile_reports_the_same_error(source: str) -> None:
    """Does a cell the shortcut takes but Python rejects report exactly the error it reported
    before (compiled from the transformer's text, which for a tokenizer error is the cell)?"""
    assert plain_python(source) is not None
    try:
        compile(_before(source), "<cell 3>", "exec")
    except SyntaxError as exc:
        before = f"{type(exc).__name__}: {exc}"
    else:
        raise AssertionError(f"{source!r} compiles")
    assert evaluator.run_cell(source, 3) == {"status": "error", "error": before}


def test_plain_cells_never_reach_the_transformer(monkeypatch) -> None:
    """Does the evaluator run a plain cell without calling IPython's transformer, and a cell with
    a magic through it?"""
    calls: list[str] = []
    assert TRANSFORMER is not None
    original = TRANSFORMER.transform_cell
    monkeypatch.setattr(TRANSFORMER, "transform_cell", lambda s: calls.append(s) or original(s))
    evaluator._fresh_namespace()
    assert evaluator.run_cell("x = 2\ny = x * 3", 0) == {"status": "ok"}
    assert calls == []
    assert evaluator.run_cell("%matplotlib inline\nz = y + 1", 1) == {"status": "ok"}
    assert calls == ["%matplotlib inline\nz = y + 1"]
    assert evaluator._NAMESPACE["z"] == 7
