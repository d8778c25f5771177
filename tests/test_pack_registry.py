"""Finding, loading and inferring packs (``autograder.pack.registry``, ``infer``, ``scaffold``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.errors import PackNotFound, SpecError
from autograder.pack import registry
from autograder.pack.infer import infer, notebook_pack
from autograder.pack.master import check_master, sync_master
from autograder.pack.scaffold import scaffold

FIXTURES = Path(__file__).parent / "fixtures" / "assignments"


@pytest.fixture()
def with_fixtures(monkeypatch):
    """The fixture packs on the search path, next to the repository's."""
    monkeypatch.setenv(registry.SEARCH_ENV, str(FIXTURES))


def test_unknown_pack_names_the_available_ones(with_fixtures):
    """Is an unknown name a PackNotFound listing every pack?"""
    with pytest.raises(
        PackNotFound, match=r"no assignment 'nope' \(available: .*math_primer.*tiny"
    ):
        registry.find("nope")


def test_default_pack_is_the_course_default():
    """Is the default pack the one named in assignments/course.toml?"""
    assert registry.default_name() == "math_primer"


def test_pack_loads_by_name_and_by_folder_to_the_same_pack(with_fixtures):
    """Do a pack's name and its folder load the same (cached) pack, with its folder set?"""
    by_name = registry.load("tiny")
    assert registry.load(FIXTURES / "tiny") is by_name
    assert by_name.folder == (FIXTURES / "tiny").resolve()


def test_the_repository_ships_no_pack_so_current_refuses():
    """Outside a student folder or a zip, is `current()` (used by the test cells) an error
    rather than a guess?"""
    assert registry.shipped() == []
    with pytest.raises(PackNotFound, match="ships 0 assignments"):
        registry.current()


def _copy(tmp_path: Path, name: str = "tiny") -> Path:
    folder = tmp_path / "assignments" / name
    shutil.copytree(FIXTURES / "tiny", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda f: (f / "spec.py").write_text("X = 1\n"), "defines no PACK"),
        (lambda f: (f / "spec.py").write_text("raise ValueError('oops')\n"), "cannot be imported"),
        (
            lambda f: (f / "spec.py").write_text(
                (f / "spec.py").read_text().replace("givens=GIVENS", "givens={'sq': abs}")
            ),
            "GIVENS from its givens.py",
        ),
    ],
    ids=["no-pack", "import-error", "givens-not-shipped"],
)
def test_broken_pack_folders_are_spec_errors(tmp_path, edit, message):
    """Is a spec without PACK, one that fails to import, or givens the evaluator would not see a
    SpecError naming the file?"""
    folder = _copy(tmp_path)
    edit(folder)
    with pytest.raises(SpecError, match=message):
        registry.load_path(folder)


def test_a_folder_whose_name_is_not_the_pack_name_is_refused(tmp_path):
    """Is a pack whose folder name differs from PACK.name refused?"""
    folder = _copy(tmp_path, "renamed")
    with pytest.raises(SpecError, match="!= folder name"):
        registry.load_path(folder)


def _notebook(*sources: str, assignment: str | None = None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    if assignment:
        nb.metadata["otter"] = {"assignment_name": assignment}
    return nb


def test_inference_uses_otter_metadata_then_function_names(with_fixtures):
    """Is a notebook's pack read from Otter's metadata, else from the functions it defines?"""
    candidates = registry.names()
    assert notebook_pack(_notebook("x = 1", assignment="tiny"), candidates) == "tiny"
    defined = _notebook("def chain_gradient(f, f_prime, x):\n    ...\n")
    assert notebook_pack(defined, candidates) == "tiny"
    assert notebook_pack(_notebook("def jacobian_Wx(W, x): ..."), candidates) == "math_primer"
    assert notebook_pack(_notebook("x = 1"), candidates) is None


def test_a_folder_is_inferred_when_every_telling_notebook_agrees(with_fixtures):
    """Does one pack win when all notebooks that tell agree (silent and unusable ones aside)?"""
    notebooks = [_notebook("x = 1", assignment="tiny"), _notebook("y = 2"), None]
    assert infer(notebooks) == "tiny"


def test_mixed_or_silent_folders_name_the_candidates(with_fixtures):
    """Is a mixed folder, or one where no notebook tells, a PackNotFound naming the packs?"""
    mixed = [_notebook(assignment="tiny"), _notebook("def jacobian_Wx(W, x): ...")]
    with pytest.raises(PackNotFound, match=r"mixed submissions \(1 look like math_primer, 1 look"):
        infer(mixed)
    with pytest.raises(PackNotFound, match=r"candidates: .*math_primer.*tiny.*--assignment"):
        infer([_notebook("x = 1")])


def test_scaffold_writes_a_consistent_pack_and_refuses_to_overwrite(tmp_path):
    """Does `new` write a spec, a master that agrees with it, a reference and samples, and
    refuse an existing or badly named pack?"""
    made = scaffold("week_three", root=tmp_path)
    pack = registry.load_path(made.pack)
    assert check_master(pack) == made.pack / "week_three.ipynb"
    assert {p.name for p in made.solutions.iterdir()} >= {"reference.py", "samples.py"}
    with pytest.raises(Exception, match="exists already"):
        scaffold("week_three", root=tmp_path)
    with pytest.raises(Exception, match="lower case"):
        scaffold("Week-3", root=tmp_path)


def test_sync_master_rewrites_drifted_test_cells(tmp_path):
    """Does sync_master rewrite a test cell that drifted from the spec, so the check passes?"""
    folder = _copy(tmp_path)
    pack = registry.load_path(folder)
    master = folder / "tiny.ipynb"
    nb = nbformat.read(str(master), as_version=4)
    cell = next(c for c in nb.cells if "def test_p2_dW(" in c.source)
    cell.source = cell.source.replace("points: 1.0", "points: 0.5")
    nbformat.write(nb, str(master))
    with pytest.raises(Exception, match="p2: test cell 3 should read"):
        check_master(pack)
    assert sync_master(pack) == ["p2"]
    assert check_master(pack) == master
