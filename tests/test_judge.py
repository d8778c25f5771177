"""The judge's own pieces: the numbers-only protocol and what the evaluator has in memory."""

from __future__ import annotations

import io
import struct
import subprocess
import sys

import numpy as np
import pytest

from autograder.checks.oracle import ELEMENTWISE, fd_jacobian
from autograder.givens import DERIVATIVES
from autograder.judge import protocol


def test_round_trip_keeps_arrays_and_header():
    """Does a message come back with the same header and the same arrays?"""
    arrays = [np.arange(6.0).reshape(2, 3), np.array([1, 2], dtype=np.int32)]
    header, got = protocol.decode(protocol.encode({"op": "call", "seq": 3}, arrays))
    assert header == {"op": "call", "seq": 3}
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, got))


def _message(header: bytes, *blobs: bytes) -> bytes:
    return struct.pack(">I", len(header)) + header + b"".join(blobs)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _message(b"[" * 100_000 + b"]" * 100_000),
        _message(b'{"_blobs": [10]}', b"123"),
        _message(b'{"_blobs": "x"}'),
        _message(b"\xff\xfe"),
        struct.pack(">I", protocol.MAX_HEADER_BYTES + 1) + b"{}",
    ],
    ids=["empty", "deep-nesting", "short-blob", "bad-blobs", "not-utf8", "huge-header"],
)
def test_malformed_messages_are_protocol_errors(data):
    """Is every malformed message a ProtocolError, never another exception?"""
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(data)


def test_object_arrays_are_refused():
    """Is an .npy blob holding Python objects (a pickle) refused without being loaded?"""
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    blob = buffer.getvalue()
    header = b'{"_blobs": [%d]}' % len(blob)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(_message(header, blob))


@pytest.mark.parametrize(
    "value,kind",
    [
        (None, "none"),
        (..., "ellipsis"),
        ("text", "foreign"),
        ([1.0, 2.0], "array"),
        (len, "foreign"),
    ],
)
def test_answers_are_described_as_plain_data(value, kind):
    """Is every answer turned into a plain description (no object crosses to the judge)?"""
    arrays: list = []
    description = protocol.describe_value(value, arrays)
    assert description["kind"] == kind
    rebuilt = protocol.value_from(description, arrays)
    if kind == "array":
        assert type(rebuilt) is np.ndarray and rebuilt.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name,f,fprime", ELEMENTWISE)
def test_given_derivatives_are_the_oracles(name, f, fprime):
    """Is the f' the evaluator hands to students the derivative the oracle uses?"""
    x = np.linspace(-2, 2, 7)
    assert DERIVATIVES[name] is fprime
    assert np.allclose(np.diag(fd_jacobian(f, x)), DERIVATIVES[name](x), atol=1e-8)


def test_evaluator_does_not_load_the_checks():
    """Does importing the evaluator leave every checks module out of memory?"""
    code = (
        "import sys, autograder.judge.evaluator; "
        "print(sorted(m for m in sys.modules if m.startswith('autograder')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "autograder.judge.evaluator" in out.stdout
    assert "autograder.checks" not in out.stdout
