"""Tests for reading one notebook in autograder.intake: parsed once, yet what nbformat reads."""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import intake
from autograder.intake import MAX_DEPTH, notebook_bytes


def sample_notebook() -> dict:
    """A v4.5 notebook with every part the reader rewrites: lists of lines in sources, streams,
    mimebundles (a JSON one kept as a list), attachments, transient metadata."""
    code = nbformat.v4.new_code_cell(["import numpy as np\n", "x = 1"], execution_count=1)
    code.metadata["trusted"] = True
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=["a\n", "b"]),
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": ["1\n", "2"], "application/vnd.x+json": ["kept"]},
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": "3"}, execution_count=1),
        nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["t"]),
    ]
    markdown = nbformat.v4.new_markdown_cell(["# Title\n", "text"])
    markdown.attachments = {"a.png": {"image/png": "iVBO", "text/plain": ["x\n", "y"]}}
    raw_cell = nbformat.v4.new_raw_cell("raw")
    nb = nbformat.v4.new_notebook(cells=[code, markdown, raw_cell])
    nb.metadata.update(
        signature="sha256:0",
        orig_nbformat=3,
        kernelspec={"name": "python3", "display_name": "Python 3"},
    )
    return json.loads(json.dumps(nb))


def as_before(text: str) -> tuple[bytes | None, str | None]:
    """What intake made of a notebook's text before it parsed it once: its checks of the JSON,
    then ``nbformat.reads`` (the path intake still takes for what it cannot read from its parse)."""
    raw = json.loads(text)
    problem = intake.json_problem(raw)
    if problem is not None:
        return None, problem
    notebook, problem = intake.read_with_nbformat(text)
    return (None if notebook is None else notebook_bytes(notebook)), problem


def as_now(text: str) -> tuple[bytes | None, str | None]:
    notebook, problem = intake._parse_notebook(text.encode(), max_bytes=10**8)
    return (None if notebook is None else notebook_bytes(notebook)), problem


ODD_VALUES = [None, 1, 4.0, True, "x", [], [1], {}, {"a": 1}, ["x\n", "y"]]


def mutants() -> list[tuple[str, dict]]:
    """The sample notebook with one value anywhere in it replaced by an odd one, or removed."""
    base = sample_notebook()
    found: list[tuple[str, dict]] = []

    def walk(node: object, path: tuple) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)  # type: ignore[union-attr]
        for key, child in list(items):
            where = (*path, key)
            for value in [*ODD_VALUES, "remove"]:
                nb = copy.deepcopy(base)
                parent = nb
                for step in path:
                    parent = parent[step]
                if value == "remove":
                    if not isinstance(parent, dict):
                        continue
                    del parent[key]
                else:
                    parent[key] = copy.deepcopy(value)
                found.append((f"{'/'.join(map(str, where))}={value!r}", nb))
            if isinstance(child, dict | list):
                walk(child, where)

    walk(base, ())
    return found


@pytest.mark.parametrize(("name", "nb"), mutants(), ids=lambda x: x if isinstance(x, str) else "")
def test_a_notebook_reads_as_nbformat_reads_it(name, nb):
    """Does intake, parsing the JSON once, give the notebook (or the problem, word for word)
    that ``nbformat.reads`` gave, whatever one value of the notebook is changed to?"""
    assert_read_alike(json.dumps(nb))


def assert_read_alike(text: str) -> None:
    now, before = as_now(text), as_before(text)
    if now[0] is not None and before[0] is not None:  # cells without (unique) ids get random ones
        now, before = (_without_ids(now[0]), None), (_without_ids(before[0]), None)
    assert now == before


def test_the_sample_reads_byte_for_byte_as_nbformat_reads_it():
    """Is a notebook with ids read into the very bytes ``nbformat.reads`` gives (ids included)?"""
    text = json.dumps(sample_notebook())
    assert as_now(text) == as_before(text)
    assert as_now(text)[0] is not None


def _without_ids(data: bytes) -> bytes:
    nb = json.loads(data)
    for cell in nb["cells"]:
        cell.pop("id", None)
    return notebook_bytes(nb)


@pytest.mark.parametrize(
    "nb",
    [
        {"nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": []}], "metadata": {}},
        {"nbformat": 3, "nbformat_minor": 0, "metadata": {}},
        {"nbformat": [4], "nbformat_minor": 5, "cells": [], "metadata": {}},
        {"nbformat": 4, "nbformat_minor": "5", "cells": [], "metadata": {}},
        {"nbformat": 4, "nbformat_minor": 4, "cells": [], "metadata": {}},
        {"nbformat": 5, "nbformat_minor": 0, "cells": [], "metadata": {}},
        {"nbformat": 4, "nbformat_minor": 9, "cells": [{"cell_type": "new"}], "metadata": {}},
        {**sample_notebook(), "nbformat_minor": 4},
        {**sample_notebook(), "nbformat_minor": 9},
        {**sample_notebook(), "nbformat_minor": -1},
        {**sample_notebook(), "cells": [*sample_notebook()["cells"]] * 2},
    ],
    ids=[
        "v3",
        "v3-no-worksheets",
        "list-version",
        "text-minor",
        "v4.4",
        "v5",
        "v4.9-new-cell-type",
        "sample-v4.4",
        "sample-v4.9",
        "sample-v4.-1",
        "duplicate-ids",
    ],
)
def test_other_versions_read_as_nbformat_reads_them(nb):
    """Is a notebook of another version (or a malformed one) read, or refused, as before?"""
    assert_read_alike(json.dumps(nb))


json_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet=st.sampled_from('a\\"u\ud800\udc00\U0001f600')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_the_cheap_tree_check_agrees_with_the_full_walk(value, ascii_only):
    """Does the tree check that skips strings when the text escapes no surrogate find exactly
    the problems (depth, lone surrogates) the full walk finds?"""
    text = json.dumps(value, ensure_ascii=False)
    if ascii_only or intake._SURROGATE.search(text):  # UTF-8 text holds no surrogate unescaped
        text = json.dumps(value)
    raw = json.loads(text)
    assert intake._tree_problem(raw, text) == intake._tree_problem(raw)


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1])
def test_the_cheap_tree_check_finds_the_depth(depth):
    """Is nesting one level over MAX_DEPTH found by the cheap check, and MAX_DEPTH passed?"""
    value: object = 0
    for _ in range(depth):
        value = [value] if len(str(value)) % 2 else {"k": value}
    text = json.dumps(value)
    raw = json.loads(text)
    assert intake._tree_problem(raw, text) == intake._tree_problem(raw)
    assert (intake._tree_problem(raw, text) is None) == (depth == MAX_DEPTH)
