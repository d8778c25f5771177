"""The pieces the evaluator shares with the checks: telling a template's placeholder function."""

from __future__ import annotations

import functools

import pytest

from autograder.givens import is_placeholder, source_is_placeholder

BODIES = {
    "ellipsis": "    ...",
    "pass": "    pass",
    "docstring": '    """Return the Jacobian."""',
    "docstring and ellipsis": '    """Return the Jacobian."""\n    ...',
    "return None": "    return None",
    "bare return": "    return",
    "none": "    None",
    "answer": "    return W",
    "ellipsis then answer": "    ...\n    return W.T",
    "print": "    print(W)",
    "raise": "    raise NotImplementedError",
    "closure": "    def inner():\n        return W\n    return inner",
    "yield": "    yield W",
    "number": "    0",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize(
    "header", ["def f(W):", "def f(W, x=1, *args, **kwargs):", "async def f(W):"]
)
def test_the_bytecode_shortcut_agrees_with_the_source(tmp_path, body, header):
    """Does the bytecode check give the same verdict as reading the source, for every kind of
    body a student may leave or write?"""
    module = tmp_path / "student.py"
    module.write_text(f"W = 1\n{header}\n{body}\n")
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)  # noqa: S102
    fn = namespace["f"]
    assert is_placeholder(fn) == source_is_placeholder(fn)


def test_placeholders_are_told_apart_from_answers(tmp_path):
    """Is ``...`` a placeholder, and an answer not one (the cases the runner's message hangs on)?"""
    module = tmp_path / "student.py"
    module.write_text("def blank(W):\n    ...\n\ndef done(W):\n    return W.T\n")
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)  # noqa: S102
    assert is_placeholder(namespace["blank"]) and not is_placeholder(namespace["done"])
    assert not is_placeholder(functools.partial(namespace["blank"], 1))
