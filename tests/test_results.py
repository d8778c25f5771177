"""Tests for autograder.results: the packed results a batch keeps in memory."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.results import PackedResults

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(blacklist_categories=()))
    | st.tuples(st.integers()),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers() | st.booleans(), inner, max_size=3)
    ),
    max_leaves=15,
)
results = st.fixed_dictionaries({"student": st.text(max_size=5), "x": json_like})


def same(a: object, b: object) -> bool:
    """Equal, types included (NaN equal to NaN, 1 not equal to 1.0 or True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))  # type: ignore[arg-type]
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    return a == b


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(results, max_size=4))
def test_a_packed_result_reads_back_as_its_json_decodes(batch):
    """Is each result read from a PackedResults exactly what decoding its JSON gives (key order,
    types, NaN, tuples made lists, keys made text), by iteration, index and slice alike?"""
    packed = PackedResults(batch)
    expected = [json.loads(json.dumps(result)) for result in batch]
    for got in (list(packed), [packed[i] for i in range(len(packed))], packed[:]):
        assert len(got) == len(expected)
        assert all(same(g, e) for g, e in zip(got, expected, strict=True))


def test_a_read_result_is_a_fresh_copy():
    """Does changing a result read from a PackedResults (or the one appended) change nothing
    stored?"""
    result = {"student": "ann", "questions": {"q1": {"score": 1.0, "tags": ["a"]}}}
    packed = PackedResults([result])
    result["questions"]["q1"]["tags"].append("b")
    packed[0]["questions"]["q1"]["score"] = 0.0
    assert packed[0] == {"student": "ann", "questions": {"q1": {"score": 1.0, "tags": ["a"]}}}


def test_a_result_that_is_not_json_is_kept_as_it_is():
    """Is a result that cannot be written as JSON kept unchanged (for the writer to report), and
    the others still packed and sorted with it?"""
    odd = {"student": "bob", "x": {1, 2}}
    packed = PackedResults([{"student": "cid", "total": 1.0}, odd, {"student": "ann"}])
    assert packed.sort_by_student().students == ["ann", "bob", "cid"]
    assert packed[1] is odd
    assert list(packed)[2] == {"student": "cid", "total": 1.0}


@settings(max_examples=100, deadline=None)
@given(first=st.lists(results, max_size=4), second=st.lists(results, max_size=4))
def test_extending_takes_packed_items_as_they_are(first, second):
    """Does extending a PackedResults by another (the same dictionary, an empty one, or
    another's) read back as the results of both in order, and changing the copy of some
    students' results leave the others and the original as they were?"""
    merged = PackedResults()
    merged.extend(PackedResults(first))
    merged.extend(PackedResults(second))  # another dictionary: packed again
    merged.extend(merged[:0])
    expected = [json.loads(json.dumps(result)) for result in [*first, *second]]
    assert all(same(g, e) for g, e in zip(merged, expected, strict=True))
    assert len(merged) == len(expected)
    chosen = {r["student"] for r in first[:1]}
    changed = merged.changed(chosen, lambda r: {**r, "seen": True})
    for got, before in zip(changed, expected, strict=True):
        wanted = {**before, "seen": True} if before["student"] in chosen else before
        assert same(got, wanted)
    assert all(same(g, e) for g, e in zip(merged, expected, strict=True))
    assert changed.ids() == [r["student"] for r in expected]
