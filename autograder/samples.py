"""Sample submissions made from the student template: the demo batch and the tests' catalogue.

A submission is the built student notebook with some answer cells replaced by given source code.
The answers are the pack's, in ``solutions/<name>/samples.py`` (never shipped to students):
``CORRECT`` (question -> source), ``EQUIVALENT`` (question -> other correct sources),
``MISTAKES`` ((question, tag, source) triples) and optionally ``DEMO_MISTAKES`` (the tags of the
demo's mistakes) and ``DEMO_PARTIAL`` (the questions the demo's partial submission answers).
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import nbformat

from .errors import KitError
from .pack import registry
from .pack.spec import Pack


class SamplesError(KitError):
    """A pack has no sample answers, or they do not fit its template."""


@dataclass(frozen=True)
class Samples:
    """A pack's sample answers."""

    correct: dict[str, str]
    """One correct answer per question."""
    equivalent: dict[str, list[str]] = field(default_factory=dict)
    """Other correct forms, each of which must earn full points."""
    mistakes: list[tuple[str, str, str]] = field(default_factory=list)
    """(question, expected tag, wrong answer): each must lose points on its question with that
    tag."""
    demo_mistakes: tuple[str, ...] = ()
    """Tags of the mistakes in the demo's ``ben_mistakes``."""
    demo_partial: tuple[str, ...] = ()
    """The questions the demo's ``dora_partial`` answers."""


def solutions_dir(pack: Pack) -> Path:
    """``solutions/<name>/`` beside the ``assignments/`` folder holding the pack."""
    if pack.folder is None:
        raise SamplesError(f"pack {pack.name!r} has no folder, hence no solutions")
    return pack.folder.parent.parent / "solutions" / pack.name


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SamplesError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_samples(pack: Pack | str) -> Samples:
    """The pack's sample answers from ``solutions/<name>/samples.py``.

    Raises:
        SamplesError: the file is missing or names questions the pack does not have.
    """
    pack = registry.load(pack)
    path = solutions_dir(pack) / "samples.py"
    if not path.is_file():
        raise SamplesError(f"no sample answers for {pack.name}: {path} is missing")
    module = _module(path, f"_autograder_samples_{pack.name}")
    correct = dict(getattr(module, "CORRECT", {}))
    samples = Samples(
        correct=correct,
        equivalent={q: list(v) for q, v in getattr(module, "EQUIVALENT", {}).items()},
        mistakes=[tuple(m) for m in getattr(module, "MISTAKES", [])],
        demo_mistakes=tuple(getattr(module, "DEMO_MISTAKES", ())),
        demo_partial=tuple(getattr(module, "DEMO_PARTIAL", tuple(correct)[: len(correct) // 2])),
    )
    named = {*samples.correct, *samples.equivalent, *(q for q, _, _ in samples.mistakes)}
    unknown = sorted(named - set(pack.question_ids))
    if unknown:
        raise SamplesError(f"{path} names questions {unknown} that {pack.name} does not have")
    return samples


def answer_cell_index(nb: nbformat.NotebookNode, question: str, *, pack: Pack) -> int:
    """The index of the code cell defining the question's first function."""
    first = pack.question(question).function_names[0]
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f"def {first}(" in cell.source:
            return i
    raise KeyError(f"no answer cell for {question} (def {first}) in the template")


def fill(
    template: nbformat.NotebookNode, answers: dict[str, str], *, pack: Pack
) -> nbformat.NotebookNode:
    """A copy of the template with the given questions' answer cells replaced."""
    nb = nbformat.from_dict(json.loads(json.dumps(template)))
    for question, source in answers.items():
        nb.cells[answer_cell_index(nb, question, pack=pack)].source = source
    return nb


def write_samples(
    folder: Path, *, pack: Pack | str, template_path: Path | None = None
) -> list[Path]:
    """Write the demo batch: correct, typical mistakes, blank, partial, broken and a zip."""
    from .build import ensure_built

    pack = registry.load(pack)
    samples = load_samples(pack)
    if template_path is None:
        template_path = ensure_built(pack=pack).student_notebook
    template = nbformat.read(str(template_path), as_version=4)
    folder.mkdir(parents=True, exist_ok=True)
    demo = set(samples.demo_mistakes) or {tag for _, tag, _ in samples.mistakes}
    mistakes = {q: src for q, tag, src in samples.mistakes if tag in demo}
    correct = samples.correct
    notebooks = {
        "ada_correct": fill(template, correct, pack=pack),
        "ben_mistakes": fill(template, {**correct, **mistakes}, pack=pack),
        "cleo_blank": template,
        "dora_partial": fill(template, {q: correct[q] for q in samples.demo_partial}, pack=pack),
    }
    written = []
    for name, nb in notebooks.items():
        path = folder / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        written.append(path)
    broken = folder / "eli_broken.ipynb"
    broken.write_text('{"cells": [ this is not json', encoding="utf-8")
    zipped = folder / "finn_zip.zip"
    other = {q: forms[0] for q, forms in samples.equivalent.items() if forms}
    last = {q: other[q] for q in list(other)[-1:]}
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr(
            f"homework/{pack.name}_finn.ipynb",
            nbformat.writes(fill(template, {**correct, **last}, pack=pack)),
        )
    return [*written, broken, zipped]
