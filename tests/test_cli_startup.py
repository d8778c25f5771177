"""Start-up of the CLI (autograder/cli.py, grading.py): which heavy libraries are imported before
the first result? A structural test, not a timing test: pandas, matplotlib, Otter, Dask and sympy
cost seconds to import, and nothing before the first graded submission needs them (sympy's exact
Jacobians are compiled once and then replayed from the pack's store, autograder/pack/derive.py;
the outputs' pandas and matplotlib are loaded by a thread of their own while the batch is
graded)."""

from __future__ import annotations

import pytest

from autograder.grading import PREFETCH_THREAD
from autograder.samples import write_samples
from helpers import json_of_script

HEAVY = ("pandas", "matplotlib", "otter", "dask", "distributed", "sympy")
"""Libraries that ``grade`` must not import before its first result."""


def _imported(script: str, *args: str) -> dict[str, bool]:
    """Run ``script`` in a fresh interpreter (``python -c``, as the forkserver needs) and read
    the JSON it prints last: which of :data:`HEAVY` were imported."""
    return json_of_script(script, *args)


HELP = f"""
import json, sys
from autograder.cli import main
for args in (["--help"], ["grade", "--help"]):
    try:
        main(args, prog_name="autograder")
    except SystemExit:
        pass
print(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))
"""

FIRST_RESULT = f"""
import json, sys, threading
from pathlib import Path

first_import = {{}}  # heavy library -> the thread that imported it first

class Watch:
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in {HEAVY!r} and top not in first_import:
            first_import[top] = threading.current_thread().name
        return None

sys.meta_path.insert(0, Watch())
import autograder.cli
from autograder.grading import grade

seen = {{}}

def progress(submissions):
    def on_done(result):
        seen.setdefault("modules", {{name: first_import.get(name) for name in {HEAVY!r}}})
    return on_done

grade(submissions=Path(sys.argv[1]), out=Path(sys.argv[2]), jobs=1, progress=progress)
end = {{f"end:{{name}}": name in sys.modules for name in {HEAVY!r}}}
print(json.dumps({{**seen["modules"], **end}}))
"""


def test_help_imports_no_heavy_library() -> None:
    """Does ``--help`` (and ``grade --help``) run without importing pandas, matplotlib, Otter,
    Dask or sympy?"""
    imported = _imported(HELP)
    assert not any(imported.values()), imported


@pytest.fixture(scope="module")
def first_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What was imported when the judge's first result of a real submission arrived, in a
    process started after another one graded the same submission (which may have compiled the
    exact Jacobians with sympy and kept them in the pack's store, as any first run does)."""
    folder = tmp_path_factory.mktemp("startup")
    write_samples(folder / "all", pack="math_primer")
    one = folder / "one"
    one.mkdir()
    (one / "ada_correct.ipynb").write_bytes((folder / "all" / "ada_correct.ipynb").read_bytes())
    _imported(FIRST_RESULT, str(one), str(folder / "first"))
    return _imported(FIRST_RESULT, str(one), str(folder / "out"))


@pytest.mark.parametrize("library", ["otter", "dask", "distributed"])
def test_grade_imports_no_heavy_library_before_its_first_result(
    first_result: dict[str, object], library: str
) -> None:
    """Is the first submission graded (through the judge) without importing Otter or Dask?"""
    assert first_result[library] is None


@pytest.mark.parametrize("library", ["pandas", "matplotlib"])
def test_the_outputs_libraries_load_beside_the_grading(
    first_result: dict[str, object], library: str
) -> None:
    """Until the first result, are the outputs' libraries imported only by the thread that
    loads them while the batch is graded, never on the way to the first result?"""
    assert first_result[library] in (None, PREFETCH_THREAD)


def test_grade_imports_no_sympy_before_its_first_result(first_result: dict[str, object]) -> None:
    """Once the pack's exact Jacobians are stored, is the first submission graded without
    importing sympy?"""
    assert first_result["sympy"] is None


@pytest.mark.parametrize("library", ["sympy", "otter", "dask"])
def test_a_whole_grade_of_one_submission_imports_none_of(
    first_result: dict[str, object], library: str
) -> None:
    """Once the pack's exact Jacobians are stored, does a whole ``grade`` of one submission,
    outputs and report included, run without sympy, Otter or Dask?"""
    assert not first_result[f"end:{library}"]


WITH_PAINTER = f"""
import json, sys
from pathlib import Path
from autograder import figures
from autograder.grading import grade

with figures.painting():
    grade(submissions=Path(sys.argv[1]), out=Path(sys.argv[2]), jobs=1)
print(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))
"""


def test_with_a_painter_grade_never_imports_matplotlib(tmp_path_factory) -> None:
    """With a painter drawing the report's figures (the CLI's ``grade``), does a whole ``grade``
    of one submission leave matplotlib out of the grading process?"""
    folder = tmp_path_factory.mktemp("painter")
    write_samples(folder / "all", pack="math_primer")
    one = folder / "one"
    one.mkdir()
    (one / "ada_correct.ipynb").write_bytes((folder / "all" / "ada_correct.ipynb").read_bytes())
    imported = _imported(WITH_PAINTER, str(one), str(folder / "out"))
    assert not imported["matplotlib"], imported
    assert (folder / "out" / "report.html").read_text().count("<svg") == 2
