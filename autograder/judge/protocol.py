"""Messages between judge and evaluator: a JSON header plus raw numeric arrays, never pickle.

One message is ``[4-byte header length][JSON header][array bytes]...``; the header lists each
blob's length (``_blobs``) and its dtype and shape (``_arrays``). The judge decodes whatever the
evaluator sends with size limits, and accepts only plain numeric dtypes (``<f8``, ``|b1``...,
checked by pattern before NumPy parses them) whose shape fits the blob's length, so a hostile
evaluator can at worst send wrong numbers.
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The largest message the judge accepts from an evaluator."""
MAX_HEADER_BYTES = 1024 * 1024
"""The largest JSON header the judge parses."""
MAX_TEXT = 2000
"""Longest string (error message, type name) kept from an evaluator."""
NUMERIC_KINDS = "biuf"
"""dtype kinds that travel as arrays (bool, ints, floats); anything else is described by name."""


class ProtocolError(Exception):
    """A message that does not follow the protocol (from a broken or hostile evaluator)."""


@dataclass(frozen=True)
class Foreign:
    """An answer that is not a numeric array, described by its type name only."""

    type_name: str

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


_DTYPE = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")
"""The only dtype descriptions accepted: a byte order, a numeric kind and an item size."""
MAX_DIMS = 32
"""The most dimensions an array may announce."""


def _not_json(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_ENCODER = (
    None
    if _MAKE_ENCODER is None
    else _MAKE_ENCODER(
        None, _not_json, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
)
"""``json.dumps``'s C encoder with its default settings, made once; no check for cycles (a
header is a few plain dicts and lists built for one message)."""
_MAKE_SCANNER = getattr(json.scanner, "c_make_scanner", None)
_SCAN = None if _MAKE_SCANNER is None else _MAKE_SCANNER(json.JSONDecoder())
_WHITESPACE = " \t\n\r"
"""What JSON counts as white space around a value."""


def _dumps(header: dict) -> str:
    """``json.dumps(header)``, the same text, without making its encoder for each message (two
    messages per call of a student function)."""
    if _ENCODER is None:
        return json.dumps(header)
    return "".join(_ENCODER(header, 0))


def _loads(text: str) -> object:
    """``json.loads(text)`` (the same value, or ValueError), without its layers of Python."""
    if _SCAN is None or text.startswith("\ufeff"):
        return json.loads(text)
    try:
        value, end = _SCAN(text, len(text) - len(text.lstrip(_WHITESPACE)))
    except StopIteration:
        raise ValueError("expecting a JSON value") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError("extra data after the JSON value")
    return value


def encode(header: dict, arrays: Sequence[np.ndarray] = ()) -> bytes:
    """A message from a JSON-able header and numeric arrays (each sent as its raw bytes, its
    dtype and shape in the header)."""
    blobs, layouts = [], []
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        blobs.append(contiguous.tobytes())
        layouts.append([contiguous.dtype.str, list(contiguous.shape)])
    head = _dumps({**header, "_blobs": [len(b) for b in blobs], "_arrays": layouts}).encode()
    return b"".join([struct.pack(">I", len(head)), head, *blobs])


_DTYPES: dict[str, np.dtype] = {}
"""Accepted dtype descriptions already parsed (a handful: ``<f8``, ``<i8``, ``|b1``...)."""


def _shape_ok(shape: object) -> bool:
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        return False
    for n in shape:
        if type(n) is not int or n < 0:
            return False
    return True


def _numeric_dtype(descr: object) -> np.dtype:
    """The numeric dtype an array's description names (kept for the next arrays); ProtocolError
    for anything else."""
    if not isinstance(descr, str) or not _DTYPE.fullmatch(descr):
        raise ProtocolError("blob is not a numeric array")
    try:
        dtype = np.dtype(descr)
    except TypeError as exc:
        raise ProtocolError(f"bad array: {exc}") from None
    if dtype.kind not in NUMERIC_KINDS + "c":
        raise ProtocolError("blob lengths do not match the array")
    if len(_DTYPES) < 64:  # the pattern allows a few hundred; senders use a handful
        _DTYPES[descr] = dtype
    return dtype


def _array(layout: object, blob: memoryview) -> np.ndarray:
    """A fresh array from its announced dtype and shape and its raw bytes; ProtocolError if they
    do not fit (only numeric dtypes are even parsed: nothing here can unpickle)."""
    if not isinstance(layout, list) or len(layout) != 2:
        raise ProtocolError("bad array layout")
    descr, shape = layout
    dtype = _DTYPES.get(descr) if type(descr) is str else None
    if dtype is None:
        dtype = _numeric_dtype(descr)
    if not _shape_ok(shape):
        raise ProtocolError("bad array shape")
    if math.prod(shape) * dtype.itemsize != len(blob):
        raise ProtocolError("blob lengths do not match the array")
    return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()


def decode(
    data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, max_header: int = MAX_HEADER_BYTES
) -> tuple[dict, list[np.ndarray]]:
    """Header and arrays of a message; raises :class:`ProtocolError` on anything malformed.

    The limits protect the judge; the evaluator, reading the judge's requests (whole cells),
    lifts them.
    """
    if len(data) > max_bytes or len(data) < 4:
        raise ProtocolError(f"message of {len(data)} bytes")
    (size,) = struct.unpack(">I", data[:4])
    if size > max_header:
        raise ProtocolError(f"header of {size} bytes")
    try:
        header = _loads(data[4 : 4 + size].decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # deep nesting: RecursionError
        raise ProtocolError(f"bad header: {type(exc).__name__}") from None
    if not isinstance(header, dict) or not isinstance(header.get("_blobs"), list):
        raise ProtocolError("header is not an object with _blobs")
    lengths, layouts = header.pop("_blobs"), header.pop("_arrays", [])
    if not isinstance(layouts, list) or len(layouts) != len(lengths):
        raise ProtocolError("blob lengths do not match the message")
    view, arrays, offset = memoryview(data), [], 4 + size
    for length, layout in zip(lengths, layouts):
        if not isinstance(length, int) or length < 0 or offset + length > len(data):
            raise ProtocolError("blob lengths do not match the message")
        arrays.append(_array(layout, view[offset : offset + length]))
        offset += length
    return header, arrays


MAX_ITEMS = 16
"""The most items of a tuple answer described item by item (one level, no nesting)."""


def describe_value(value: object, arrays: list[np.ndarray], *, nested: bool = False) -> dict:
    """Evaluator side: a JSON description of an answer, appending its array(s) to ``arrays``.

    A tuple of up to :data:`MAX_ITEMS` arrays is described item by item, one level deep, so a
    function may return several arrays of different shapes (a tuple of numbers, or a list, is
    one array as before).
    """
    if isinstance(value, tuple) and not nested and 0 < len(value) <= MAX_ITEMS:
        if not any(isinstance(item, tuple) for item in value) and not all(
            np.ndim(item) == 0 for item in value
        ):
            return {
                "kind": "tuple",
                "items": [describe_value(item, arrays, nested=True) for item in value],
            }
    if value is None:
        return {"kind": "none"}
    if value is Ellipsis:
        return {"kind": "ellipsis"}
    if isinstance(value, (str, bytes, dict, set)) or callable(value):
        return {"kind": "foreign", "type": type(value).__name__[:100]}
    try:
        array = np.asarray(value)
        if array.dtype == object:
            array = np.array(value, dtype=np.float64)
        array = np.array(array).view(np.ndarray)
    except Exception as exc:  # noqa: BLE001 - anything odd is described, not sent
        return {"kind": "foreign", "type": f"{type(value).__name__[:100]} ({str(exc)[:200]})"}
    if array.dtype.kind not in NUMERIC_KINDS + "c":
        return {"kind": "foreign", "type": f"array of {array.dtype}"}
    arrays.append(array)
    return {"kind": "array", "index": len(arrays) - 1}


def value_from(description: object, arrays: list[np.ndarray], *, nested: bool = False) -> object:
    """Judge side: rebuild an answer from its description (a plain array, None, ... or Foreign)."""
    if not isinstance(description, dict):
        raise ProtocolError("value description is not an object")
    kind = description.get("kind")
    if kind == "none":
        return None
    if kind == "ellipsis":
        return Ellipsis
    if kind == "foreign":
        return Foreign(str(description.get("type", "?"))[:MAX_TEXT])
    if kind == "tuple" and not nested:
        items = description.get("items")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
            raise ProtocolError("bad tuple")
        return tuple(value_from(item, arrays, nested=True) for item in items)
    if kind == "array":
        index = description.get("index")
        if not isinstance(index, int) or not 0 <= index < len(arrays):
            raise ProtocolError("array index out of range")
        return np.array(arrays[index])  # a fresh base-class ndarray, owned by the judge
    raise ProtocolError(f"unknown value kind {kind!r}")


def text(value: object) -> str:
    """A bounded string from an evaluator-supplied field."""
    return str(value)[:MAX_TEXT]
