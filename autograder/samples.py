"""Sample submissions made from the student template: the demo batch and the tests' catalogue.

A submission is the built student notebook with some answer cells replaced by given source code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nbformat

from .contract import BY_NAME

CORRECT: dict[str, str] = {
    "q1a": "def jacobian_Wx(W, x):\n    return np.array(W, dtype=float)\n",
    "q1b": "def jacobian_xT_WT(W, x):\n    return np.asarray(W, dtype=float).copy()\n",
    "q1c": "def jacobian_elementwise(f_prime, x):\n    return np.diag(f_prime(x))\n",
    "q1d": "def dL_dW(dL_dz, x):\n    return np.outer(dL_dz, x)\n",
    "q2a": (
        "def softmax_diag_derivative(z):\n    s = softmax(z)\n    return s * (1 - s)\n\n"
        "def softmax_jacobian(z):\n    s = softmax(z)\n    return np.diag(s) - np.outer(s, s)\n"
    ),
    "q2b": "def cross_entropy_grad(z, y):\n    return softmax(z) - y\n",
    "q3": "def mse_minimizer(X, y):\n    return np.linalg.solve(X.T @ X, X.T @ y)\n",
}
"""One correct answer per question."""

EQUIVALENT: dict[str, list[str]] = {
    "q1a": [
        "def jacobian_Wx(W, x):\n    n, d = W.shape\n    J = np.zeros((n, d))\n"
        "    for i in range(n):\n        for j in range(d):\n            J[i, j] = W[i, j]\n"
        "    return J\n"
    ],
    "q1c": ["def jacobian_elementwise(f_prime, x):\n    return np.eye(len(x)) * f_prime(x)\n"],
    "q1d": [
        "def dL_dW(dL_dz, x):\n    return np.einsum('i,j->ij', dL_dz, x)\n",
        "def dL_dW(dL_dz, x):\n    return dL_dz[:, None] @ x[None, :]\n",
    ],
    "q2a": [
        "def softmax_diag_derivative(z):\n    return np.diag(softmax_jacobian(z))\n\n"
        "def softmax_jacobian(z):\n    s = softmax(z)[:, None]\n"
        "    return np.diagflat(s) - s @ s.T\n"
    ],
    "q2b": [
        "def cross_entropy_grad(z, y):\n    z = z - z.max()\n"
        "    return np.exp(z) / np.exp(z).sum() * y.sum() - y\n"
    ],
    "q3": [
        "def mse_minimizer(X, y):\n    return np.linalg.inv(X.T @ X) @ X.T @ y\n",
        "def mse_minimizer(X, y):\n    return np.linalg.pinv(X) @ y\n",
        "def mse_minimizer(X, y):\n    return np.linalg.lstsq(X, y, rcond=None)[0]\n",
        "def mse_minimizer(X, y):\n    Q, R = np.linalg.qr(X)\n"
        "    return np.linalg.solve(R, Q.T @ y)\n",
    ],
}
"""Other correct forms, each of which must earn full points."""

MISTAKES: list[tuple[str, str, str]] = [
    ("q1a", "transposed", "def jacobian_Wx(W, x):\n    return W.T\n"),
    ("q1a", "wrong_type", "def jacobian_Wx(W, x):\n    print(W)\n"),
    ("q1a", "exception", "def jacobian_Wx(W, x):\n    return W @ W\n"),
    ("q1a", "edge_case", "def jacobian_Wx(W, x):\n    return np.squeeze(W)\n"),
    ("q1b", "exception", "def jacobian_xT_WT(W, x):\n    import sys\n    sys.exit(1)\n"),
    ("q1b", "transposed", "def jacobian_xT_WT(W, x):\n    return W.T\n"),
    ("q1b", "wrong_shape", "def jacobian_xT_WT(W, x):\n    return W @ x\n"),
    ("q1c", "missing_diag", "def jacobian_elementwise(f_prime, x):\n    return f_prime(x)\n"),
    (
        "q1c",
        "scaled",
        "def jacobian_elementwise(f_prime, x):\n    return 2 * np.diag(f_prime(x))\n",
    ),
    ("q1d", "transposed", "def dL_dW(dL_dz, x):\n    return np.outer(x, dL_dz)\n"),
    ("q1d", "sign_flipped", "def dL_dW(dL_dz, x):\n    return -np.outer(dL_dz, x)\n"),
    ("q1d", "edge_case", "def dL_dW(dL_dz, x):\n    return np.squeeze(np.outer(dL_dz, x))\n"),
    (
        "q2a",
        "diag_only",
        "def softmax_diag_derivative(z):\n    s = softmax(z)\n    return s * (1 - s)\n\n"
        "def softmax_jacobian(z):\n    s = softmax(z)\n    return np.diag(s * (1 - s))\n",
    ),
    (
        "q2a",
        "not_stable",
        "def softmax_diag_derivative(z):\n    s = np.exp(z) / np.exp(z).sum()\n"
        "    return s * (1 - s)\n\ndef softmax_jacobian(z):\n    s = np.exp(z) / np.exp(z).sum()\n"
        "    return np.diag(s) - np.outer(s, s)\n",
    ),
    (
        "q2a",
        "sign_flipped",
        "def softmax_diag_derivative(z):\n    s = softmax(z)\n    return s * (s - 1)\n\n"
        "def softmax_jacobian(z):\n    s = softmax(z)\n    return np.outer(s, s) - np.diag(s)\n",
    ),
    ("q2b", "dL_dyhat", "def cross_entropy_grad(z, y):\n    return -y / softmax(z)\n"),
    ("q2b", "sign_flipped", "def cross_entropy_grad(z, y):\n    return y - softmax(z)\n"),
    (
        "q2b",
        "not_stable",
        "def cross_entropy_grad(z, y):\n    return np.exp(z) / np.exp(z).sum() - y\n",
    ),
    (
        "q3",
        "scaled",
        "def mse_minimizer(X, y):\n    return 2 * np.linalg.solve(X.T @ X, X.T @ y)\n",
    ),
    ("q3", "wrong_value", "def mse_minimizer(X, y):\n    return X.T @ y / len(y)\n"),
    ("q3", "not_finite", "def mse_minimizer(X, y):\n    return np.full(X.shape[1], np.nan)\n"),
    ("q3", "timeout", "def mse_minimizer(X, y):\n    while True:\n        pass\n"),
    ("q3", "missing", "mse_minimizer = None\n"),
]
"""(question, expected tag, wrong answer): each must lose points on its question with that tag."""


def answer_cell_index(nb: nbformat.NotebookNode, question: str) -> int:
    """The index of the code cell defining the question's first function."""
    first = BY_NAME[question].functions[0]
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f"def {first}(" in cell.source:
            return i
    raise KeyError(f"no answer cell for {question} (def {first}) in the template")


def fill(template: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """A copy of the template with the given questions' answer cells replaced."""
    nb = nbformat.from_dict(json.loads(json.dumps(template)))
    for question, source in answers.items():
        nb.cells[answer_cell_index(nb, question)].source = source
    return nb


def write_samples(folder: Path, *, template_path: Path | None = None) -> list[Path]:
    """Write the demo batch: correct, typical mistakes, blank, broken and a zip submission."""
    from .build import ensure_built

    if template_path is None:
        template_path = ensure_built(out=Path("dist")).student_notebook
    template = nbformat.read(str(template_path), as_version=4)
    folder.mkdir(parents=True, exist_ok=True)
    mistakes = {
        q: src
        for q, tag, src in MISTAKES
        if tag in {"transposed", "missing_diag", "not_stable", "dL_dyhat", "scaled"}
    }
    notebooks = {
        "ada_correct": fill(template, CORRECT),
        "ben_mistakes": fill(template, {**CORRECT, **mistakes}),
        "cleo_blank": template,
        "dora_partial": fill(template, {q: CORRECT[q] for q in ("q1a", "q1b", "q2b")}),
    }
    written = []
    for name, nb in notebooks.items():
        path = folder / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        written.append(path)
    broken = folder / "eli_broken.ipynb"
    broken.write_text('{"cells": [ this is not json', encoding="utf-8")
    zipped = folder / "finn_zip.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr(
            "homework/math_primer_finn.ipynb",
            nbformat.writes(fill(template, {**CORRECT, "q3": EQUIVALENT["q3"][0]})),
        )
    return [*written, broken, zipped]
