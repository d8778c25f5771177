"""``python -m autograder new NAME``: a new pack that builds, grades its samples and passes the
generic tests as generated.

Writes ``assignments/<name>/`` (``spec.py`` with one example derivative question, the Otter
Assign master ``<name>.ipynb`` whose test cells come from the spec) and ``solutions/<name>/``
(``reference.py`` with the closed form, ``samples.py`` with sample answers for ``demo`` and the
tests). The example question asks for the Jacobian of z = tanh(Wx); replace it with the sheet's.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..errors import KitError
from . import registry
from .master import test_cells

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

SPEC = '''"""{title}, as an assignment pack (scaffolded by `python -m autograder new`).

Each question declares its functions, cases and points; a derivative question declares its
forward map and the kit derives the reference, the shapes and the typical mistakes. See
docs/authoring.md.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import instances as inst
from autograder.pack import Derivative, Pack, Question, edge, typical


def draw_tanh_layer(rng, size):
    n, d = size
    return {{"W": inst.matrix(rng, n, d), "x": inst.vector(rng, d)}}


def tanh_layer_sympy(W, x):
    import sympy as sp

    return (W * x).applyfunc(sp.tanh)


PACK = Pack(
    name="{name}",
    title="{title}",
    questions=(
        Question(
            id="q1",
            sheet="1",
            points=2,
            cases=(typical(1.5, ((3, 4), (4, 4), (2, 5))), edge(0.5, ((1, 3), (3, 1), (1, 1)))),
            functions=(
                Derivative(
                    name="jacobian_tanh_layer",
                    params=("W", "x"),
                    draw=draw_tanh_layer,
                    forward=lambda W, x: np.tanh(W @ x),
                    sympy=tanh_layer_sympy,
                    wrt="x",
                    shape_hint="dz/dx has one row per output z_i and one column per input x_j: "
                    "(n, d)",
                ),
            ),
        ),
    ),
)
'''

REFERENCE = '''"""Reference solution of {title} (never shipped to students)."""

from __future__ import annotations

import numpy as np


def jacobian_tanh_layer(W, x):
    """Jacobian of z = tanh(Wx) with respect to x: diag(1 - tanh(Wx)^2) W, shape (n, d)."""
    W, x = np.asarray(W, dtype=float), np.asarray(x, dtype=float)
    return (1.0 - np.tanh(W @ x) ** 2)[:, None] * W


def _closed_tanh_layer(W, x):
    import sympy as sp

    z = W * x
    return sp.diag(*[1 - sp.tanh(z[i]) ** 2 for i in range(W.rows)]) * W


CLOSED_FORMS = {{"jacobian_tanh_layer": _closed_tanh_layer}}
"""Function -> its closed form in sympy, from the spec's inputs; the tests prove each against the
exact derivative of the forward map."""
'''

SAMPLES = '''"""Sample answers of {title}: the demo batch and the generic tests' catalogue."""

CORRECT = {{
    "q1": "def jacobian_tanh_layer(W, x):\\n"
    "    return np.diag(1 - np.tanh(W @ x) ** 2) @ W\\n",
}}
"""One correct answer per question."""

EQUIVALENT = {{
    "q1": [
        "def jacobian_tanh_layer(W, x):\\n"
        "    return (1 - np.tanh(W @ x) ** 2)[:, None] * W\\n",
    ],
}}
"""Other correct forms, each of which must earn full points."""

MISTAKES = [
    ("q1", "transposed", "def jacobian_tanh_layer(W, x):\\n"
     "    return (np.diag(1 - np.tanh(W @ x) ** 2) @ W).T\\n"),
    ("q1", "sign_flipped", "def jacobian_tanh_layer(W, x):\\n"
     "    return -np.diag(1 - np.tanh(W @ x) ** 2) @ W\\n"),
    ("q1", "edge_case", "def jacobian_tanh_layer(W, x):\\n"
     "    return np.squeeze(np.diag(1 - np.tanh(W @ x) ** 2) @ W)\\n"),
]
"""(question, tag, wrong answer): each must lose points on its question with that tag."""

DEMO_MISTAKES = ("sign_flipped",)
DEMO_PARTIAL = ()
'''


@dataclass(frozen=True)
class Scaffold:
    """What :func:`scaffold` wrote."""

    pack: Path
    """``assignments/<name>/``."""
    solutions: Path
    """``solutions/<name>/``."""


def _master(name: str, title: str) -> nbformat.NotebookNode:
    config = (
        f"# ASSIGNMENT CONFIG\nname: {name}\nrequirements: requirements.txt\nfiles:\n"
        "    - autograder\nexport_cell: false\ncheck_all_cell: true\nsolutions_pdf: false\n"
        "tests:\n    ok_format: false\nplugins:\n    - autograder.judge.otter_plugin.JudgePlugin"
    )
    cells = [
        nbformat.v4.new_raw_cell(config),
        nbformat.v4.new_markdown_cell(
            f"# {title}\n\nWrite each answer as a **NumPy function** in its answer cell. Hidden "
            "tests call it on random inputs of several sizes (including 1) and compare the "
            "result with the mathematics, within a tolerance relative to the size of the answer."
        ),
        nbformat.v4.new_code_cell("import numpy as np"),
        nbformat.v4.new_raw_cell("# BEGIN QUESTION\nname: q1\npoints: 2"),
        nbformat.v4.new_markdown_cell(
            "**1** Given $z = \\tanh(Wx)$ (elementwise). Calculate the Jacobian "
            "$J_z = \\frac{\\partial z}{\\partial x}$.\n\nWrite `jacobian_tanh_layer(W, x)`: `W` "
            "has shape `(n, d)`, `x` has shape `(d,)`; return $J_z$ with shape `(n, d)`."
        ),
        nbformat.v4.new_raw_cell("# BEGIN SOLUTION"),
        nbformat.v4.new_code_cell(
            "def jacobian_tanh_layer(W, x):\n"
            '    """Jacobian of z = tanh(Wx) with respect to x, shape (n, d)."""\n'
            "    # BEGIN SOLUTION\n"
            "    return (1.0 - np.tanh(W @ x) ** 2)[:, None] * np.asarray(W, dtype=float)\n"
            "    # END SOLUTION"
        ),
        nbformat.v4.new_raw_cell("# END SOLUTION"),
        nbformat.v4.new_raw_cell("# BEGIN TESTS"),
        nbformat.v4.new_raw_cell("# END TESTS"),
        nbformat.v4.new_raw_cell("# END QUESTION"),
        nbformat.v4.new_markdown_cell(
            "## Submission\n\nSave the notebook and hand in the `.ipynb` file."
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def scaffold(name: str, *, root: Path | None = None, title: str | None = None) -> Scaffold:
    """Write a new pack ``name`` under ``root`` (default: the repository, or the working directory
    when the kit is an installed wheel): its spec, its master
    notebook with the test cells generated from the spec, its reference solution and samples.

    Raises:
        KitError: the name is not lower case letters, digits and ``_``, or a pack or solutions
            folder of that name exists already.
    """
    if not _NAME.match(name):
        raise KitError(f"assignment name {name!r}: use lower case letters, digits and _")
    if root is None:
        installed = registry.REPO_ASSIGNMENTS == registry.BUNDLED_ASSIGNMENTS
        root = Path.cwd() if installed else registry.REPO_ASSIGNMENTS.parent
    root = Path(root)
    title = title or name.replace("_", " ").title()
    pack_dir, solutions = root / "assignments" / name, root / "solutions" / name
    for folder in (pack_dir, solutions):
        if folder.exists():
            raise KitError(f"{folder} exists already; choose another name")
    if name in registry.names():
        raise KitError(f"an assignment {name!r} exists already ({registry.find(name)})")
    pack_dir.mkdir(parents=True)
    solutions.mkdir(parents=True)
    (pack_dir / "spec.py").write_text(SPEC.format(name=name, title=title), encoding="utf-8")
    (solutions / "__init__.py").write_text(f'"""Model solutions of {title}."""\n', encoding="utf-8")
    (solutions / "reference.py").write_text(REFERENCE.format(title=title), encoding="utf-8")
    (solutions / "samples.py").write_text(SAMPLES.format(title=title), encoding="utf-8")
    master = pack_dir / f"{name}.ipynb"
    nb = _master(name, title)
    pack = registry.load_path(pack_dir)
    tests_end = next(i for i, c in enumerate(nb.cells) if c.source == "# END TESTS")
    for offset, source in enumerate(test_cells(pack.question("q1"))):
        nb.cells.insert(tests_end + offset, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, str(master))
    log.info("wrote %s and %s", pack_dir, solutions)
    return Scaffold(pack_dir, solutions)
