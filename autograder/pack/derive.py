"""From a declaration to instances: draw the inputs, derive the reference, list known mistakes.

For a :class:`~autograder.pack.spec.Derivative` the reference is mathematics, not a stored answer:
central finite differences in float64 of the declared forward map and, for small instances, the
exact derivative of its sympy form, compiled to NumPy once per shape. The generic misconceptions
that need the reference (``missing_diag``, ``diag_only``) are derived here; the others
(``transposed``, ``sign_flipped``, ``scaled``, ``wrong_shape``) are recognised by
:func:`autograder.checks.compare.compare` itself.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import linecache
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import CodeType
from typing import Any, cast

import numpy as np

from ..checks.oracle import fd_jacobian
from ..errors import SpecError
from .spec import (
    Case,
    Computed,
    Derivative,
    Inputs,
    Instance,
    Reference,
    Target,
    array_arguments,
)

log = logging.getLogger(__name__)

_sum = np.add.reduce
"""``np.sum`` without its Python wrapper (the same reduction)."""

_SIGNATURES: dict[int, tuple[Callable, tuple[str, ...] | None]] = {}


def call(fn: Callable, available: Mapping[str, Any]) -> Any:
    """Call a spec callable with the keywords its signature names (all of them if it takes
    ``**kwargs``).

    Raises:
        SpecError: the callable asks for a name that is not available.
    """
    return fn(**keywords(fn, available))


def keywords(fn: Callable, available: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords :func:`call` passes to ``fn`` (a new dict; the signature is read once).

    Raises:
        SpecError: the callable asks for a name that is not available.
    """
    entry = _SIGNATURES.get(id(fn))
    if entry is None or entry[0] is not fn:
        params = inspect.signature(fn).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            names = None
        else:
            names = tuple(
                p.name
                for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and (p.name in available or p.default is inspect.Parameter.empty)
            )
        entry = _SIGNATURES[id(fn)] = (fn, names)
    names = entry[1]
    if names is None:
        return dict(available)
    missing = [n for n in names if n not in available]
    if missing:
        name = getattr(fn, "__qualname__", repr(fn))
        raise SpecError(f"{name} asks for {missing}, but only {sorted(available)} are available")
    return {n: available[n] for n in names}


def draw_inputs(target: Target, rng: np.random.Generator, case: Case) -> list[Inputs]:
    """The inputs of every instance of a case, in order."""
    if target.draw_case is not None:
        drawn = call(target.draw_case, {"rng": rng, "case": case})
    elif target.draw is not None:
        drawn = [
            call(target.draw, {"rng": rng, "size": size, "case": case, "index": index})
            for index, size in enumerate(case.sizes)
        ]
    else:
        raise SpecError(f"{target.name}: give it draw= or draw_case=")
    if not drawn:
        raise SpecError(f"{target.name}: case {case.name} draws no instance (give it sizes=)")
    return [dict(inputs) for inputs in drawn]


def student_args(target: Target, inputs: Inputs) -> tuple:
    """The arguments passed to the student's function for these inputs."""
    if target.args is not None:
        return tuple(call(target.args, inputs))
    missing = [p for p in target.params if p not in inputs]
    if missing:
        raise SpecError(f"{target.name}: no input named {missing}; give args= or draw them")
    return tuple(inputs[p] for p in target.params)


def instances(target: Target, rng: np.random.Generator, case: Case) -> list[Instance]:
    """The instances of one case of one target: inputs, arguments, reference, known mistakes."""
    return [build_instance(target, inputs) for inputs in draw_inputs(target, rng, case)]


def build_instance(
    target: Target, inputs: Inputs, args: tuple | None = None, *, jacobians: dict | None = None
) -> Instance:
    """One instance from its drawn inputs: the student's arguments (``args`` when already
    computed by :func:`student_args`), the reference, known mistakes (no randomness: the inputs of
    a case are drawn first, so instances can be built lazily). ``jacobians``: see
    :func:`derivative`."""
    args = student_args(target, inputs) if args is None else args
    expected = reference(target, inputs, jacobians=jacobians)
    what = (
        str(call(target.describe, inputs))
        if target.describe is not None
        else array_arguments(target.params, args)
    )
    return Instance(
        args=args,
        expected=expected,
        what=what,
        alternatives=Deferred(lambda: alternatives(target, inputs, expected)),
        inputs=inputs,
    )


class Deferred(Mapping[str, Any]):
    """A mapping worked out on first use: an instance's known wrong answers are only looked at
    when an answer is wrong (the same dict as computing them at once: they depend on the inputs
    and the reference only)."""

    def __init__(self, make: Callable[[], Mapping[str, Any]]) -> None:
        self._make: Callable[[], Mapping[str, Any]] | None = make
        self._items: Mapping[str, Any] = {}

    def _mapping(self) -> Mapping[str, Any]:
        if self._make is not None:
            self._items, self._make = self._make(), None
        return self._items

    def __getitem__(self, key: str) -> Any:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return repr(self._mapping())


# --- the reference ---------------------------------------------------------------------------


def reference(target: Target, inputs: Inputs, *, jacobians: dict | None = None) -> Reference:
    """The reference answer: derived for a Derivative, computed for a Computed target
    (``jacobians``: see :func:`derivative`)."""
    if isinstance(target, Computed):
        value = call(target.solve, inputs)
        if target.returns is None:
            return np.asarray(value, dtype=np.float64)
        return tuple(np.asarray(v, dtype=np.float64) for v in value)
    if isinstance(target, Derivative):
        parts = tuple(
            derivative(target, inputs, wrt, jacobians=jacobians) for wrt in target.wrt_names()
        )
        return parts[0] if target.returns is None else parts
    raise SpecError(f"{target.name}: declare it as a Derivative or a Computed target")


def _arrays(inputs: Inputs) -> dict[str, np.ndarray]:
    return {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}


def _use_exact(target: Derivative, inputs: Inputs) -> bool:
    if target.sympy is None:
        return False
    arrays = _arrays(inputs)
    if max((a.size for a in arrays.values()), default=0) > target.exact_max_size:
        return False
    if any(a.ndim > 2 for a in arrays.values()):
        return False
    return target.exact_if is None or bool(call(target.exact_if, inputs))


def derivative(
    target: Derivative, inputs: Inputs, wrt: str, *, jacobians: dict | None = None
) -> np.ndarray:
    """d(output)/d(wrt) of the target's forward map at these inputs, shape ``out + wrt``
    (or the diagonal, or a vector-Jacobian product, as the target declares).

    ``jacobians``: a dict kept while ``inputs`` (the same dict object) lives, e.g. for one
    submission. The Jacobian is a function of the inputs and of the target's forward map, sympy
    form, upstream gradient, step and exact-or-not rule only, so a second target that shares all
    of them (a Jacobian and its diagonal) gets a copy of the first one's instead of computing it
    again.
    """
    array = inputs.get(wrt)
    if not isinstance(array, np.ndarray):
        raise SpecError(f"{target.name}: wrt={wrt!r} must name an array input")
    slot = (
        id(inputs),
        wrt,
        target.forward,
        target.sympy,
        target.upstream,
        target.step,
        target.exact_max_size,
        target.exact_if,
    )
    known = None if jacobians is None else jacobians.get(slot)
    if known is not None:
        jac, out_shape = known[0].copy(), known[1]
    else:
        if _use_exact(target, inputs):
            jac, out_shape = exact_jacobian(target, inputs, wrt)
        else:
            jac, out_shape = fd_full_jacobian(target, inputs, wrt)
        if jacobians is not None:
            jacobians[slot] = (jac.copy(), out_shape, inputs)  # inputs: its id stays its own
    return shape_derivative(target, jac, out_shape, array.shape)


def _scalar_map(target: Derivative, inputs: Inputs) -> Callable[[Inputs], object]:
    if target.upstream is None:
        return lambda values: call(target.forward, values)
    upstream = np.asarray(inputs[target.upstream], dtype=np.float64)
    return lambda values: _sum(upstream * np.asarray(call(target.forward, values)), axis=None)


def fd_full_jacobian(
    target: Derivative, inputs: Inputs, wrt: str
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Central differences: the Jacobian (outputs flattened x wrt flattened) and the output shape.

    The step is absolute (``target.step``): the maps of a sheet have curvature of order one
    whatever the size of their inputs, so a relative step would only lose accuracy.
    """
    point = np.asarray(inputs[wrt], dtype=np.float64)
    # The forward map's keywords are bound once; each evaluation only swaps the wrt array (as
    # call() would pass it for {**inputs, wrt: v}). The output shape is that of the first
    # evaluation (the map at the unperturbed point only when there is none).
    forward, shape = target.forward, point.shape
    kwargs = keywords(forward, {**inputs, wrt: point})
    swap = wrt in kwargs
    shapes: list[tuple[int, ...]] = []
    if target.upstream is None:

        def flat(v: np.ndarray) -> np.ndarray:
            if swap:
                kwargs[wrt] = v.reshape(shape)
            value = np.asarray(forward(**kwargs), dtype=np.float64)
            if not shapes:
                shapes.append(value.shape)
            return value

    else:
        upstream = np.asarray(inputs[target.upstream], dtype=np.float64)
        shapes.append(())

        def flat(v: np.ndarray) -> np.ndarray:
            if swap:
                kwargs[wrt] = v.reshape(shape)
            value = _sum(upstream * np.asarray(forward(**kwargs)), axis=None)
            return np.asarray(value, dtype=np.float64)

    jac = fd_jacobian(flat, point.ravel(), h=target.step)
    if not shapes:
        shapes.append(np.asarray(_scalar_map(target, inputs)(inputs)).shape)
    return jac, shapes[0]


def shape_derivative(
    target: Derivative, jac: np.ndarray, out_shape: tuple[int, ...], wrt_shape: tuple[int, ...]
) -> np.ndarray:
    """The flattened Jacobian in the sheet's shape: ``out + wrt``, or its diagonal."""
    if target.part == "diagonal":
        if jac.shape[0] != jac.shape[1]:
            raise SpecError(f"{target.name}: part='diagonal' needs a square Jacobian")
        return np.diag(jac).copy()
    return jac.reshape(tuple(out_shape) + tuple(wrt_shape))


# --- exact references with sympy ---------------------------------------------------------------
#
# sympy costs about half a second to import and more to differentiate and compile, once per
# process; the code lambdify generates is plain NumPy, though. So each compiled Jacobian of a pack
# loaded from its folder is kept in ``<pack>/__pycache__/exact-jacobians-<fingerprint>.json``
# (its source and the NumPy names it uses), and a later process replays that source without
# importing sympy: the same code on the same NumPy, hence the same floats to the last bit. The
# fingerprint covers the sympy version, this module and the pack's Python files; a missing key,
# a stale or unreadable store falls back to sympy. The store is trusted like the ``spec.py`` next
# to it (the kit executes that too): only a regular file owned by this user and writable by no
# one else is read.

_COMPILED: dict[tuple, tuple[Callable, tuple[int, ...], object]] = {}
"""(id of the target, wrt, shapes, other inputs) -> compiled Jacobian, output shape, target."""
STORE_FORMAT = 1
"""Version of the store's layout (part of its fingerprint)."""
STORE_PREFIX = "exact-jacobians-"
_FUNCTION = "_lambdifygenerated"
_STORES: dict[Path, _Store] = {}
_STORES_LOCK = threading.Lock()


def _symbols(name: str, shape: tuple[int, ...]):
    import sympy as sp

    if len(shape) == 0:
        return sp.Symbol(f"{name}_"), [sp.Symbol(f"{name}_")]
    if len(shape) == 1:
        flat = list(sp.symbols(f"{name}_0:{shape[0]}"))
        return sp.Matrix(flat), flat
    rows, cols = shape
    flat = list(sp.symbols(f"{name}_0:{rows * cols}"))
    return sp.Matrix(rows, cols, flat), flat


def symbolic_inputs(inputs: Inputs) -> tuple[dict[str, object], dict[str, list]]:
    """Sympy stand-ins for the inputs: a Matrix of symbols per array (a vector as a column, a
    0-d array as one symbol), other inputs unchanged; plus each array's flat symbol list."""
    values, flats = {}, {}
    for name, value in inputs.items():
        if isinstance(value, np.ndarray):
            values[name], flats[name] = _symbols(name, value.shape)
        else:
            values[name] = value
    return values, flats


def symbolic_output(target: Derivative, values: Mapping[str, object], flats) -> list:
    """The forward map's outputs as a flat (row-major) list of sympy expressions; the scalar
    ``sum(upstream * output)`` when the target declares an upstream gradient."""
    import sympy as sp

    if target.sympy is None:
        raise SpecError(f"{target.name}: the exact Jacobian needs its sympy= map")
    expr = call(target.sympy, values)
    outputs = list(expr) if isinstance(expr, sp.MatrixBase) else [sp.sympify(expr)]
    if target.upstream is not None:
        outputs = [sum(u * o for u, o in zip(flats[target.upstream], outputs))]
    return outputs


def _code_names(code: CodeType) -> set[str]:
    """The global (and attribute) names a code object and its nested code use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _code_names(const)
    return names


def _replay(source: str, names: list[str]) -> Callable | None:
    """The function defined by lambdify's ``source``, its ``names`` bound to NumPy's; None when
    the source is not one such function or uses other globals."""
    try:
        code = compile(source, "<exact-jacobian>", "exec")
    except (SyntaxError, ValueError):
        return None
    inner = [c for c in code.co_consts if isinstance(c, CodeType)]
    if code.co_names != (_FUNCTION,) or len(inner) != 1 or inner[0].co_name != _FUNCTION:
        return None
    used = _code_names(inner[0])
    if not used <= set(names) or not all(hasattr(np, n) for n in names):
        return None
    namespace: dict[str, object] = {n: getattr(np, n) for n in names}
    exec(code, namespace)  # noqa: S102 - trusted: written by this module (the store's checks)
    return cast("Callable", namespace[_FUNCTION])


def _portable(compiled: Callable) -> tuple[str, list[str]] | None:
    """lambdify's source of ``compiled`` and the NumPy names it uses, when it uses nothing else
    (else None: that Jacobian is not stored)."""
    code = getattr(compiled, "__code__", None)
    if code is None or code.co_name != _FUNCTION:
        return None
    source = "".join(linecache.getlines(code.co_filename))
    names = sorted(_code_names(code))
    namespace = compiled.__globals__
    missing = object()
    for name in names:
        if namespace.get(name, missing) is not getattr(np, name, missing):
            return None
    return (source, names) if source.startswith(f"def {_FUNCTION}(") else None


def _fingerprint(folder: Path) -> str | None:
    """What the compiled Jacobians of the pack in ``folder`` depend on: the store's format, the
    sympy version, this module and the pack's Python files. None without sympy."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        digest = hashlib.sha256(f"{STORE_FORMAT}\0{version('sympy')}\0".encode())
        digest.update(Path(__file__).read_bytes())
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(folder)).encode() + b"\0")
                digest.update(path.read_bytes())
    except (PackageNotFoundError, OSError):
        return None
    return digest.hexdigest()


class _Store:
    """The compiled exact Jacobians of one pack, kept in its folder's ``__pycache__``."""

    def __init__(self, folder: Path) -> None:
        self.lock = threading.Lock()
        fingerprint = _fingerprint(folder)
        self.cache = folder / "__pycache__"
        self.path = (
            None if fingerprint is None else self.cache / f"{STORE_PREFIX}{fingerprint}.json"
        )
        self.entries: dict[str, dict] = self._read()

    def _read(self) -> dict[str, dict]:
        if self.path is None:
            return {}
        try:
            with open(self.path, "rb") as handle:
                info = os.fstat(handle.fileno())
                if (
                    not stat.S_ISREG(info.st_mode)
                    or info.st_uid != os.geteuid()
                    or info.st_mode & 0o022
                ):
                    log.warning("ignoring %s: not a file of this user only", self.path)
                    return {}
                data = json.loads(handle.read())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.debug("ignoring %s: %s", self.path, exc)
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> tuple[Callable, tuple[int, ...]] | None:
        """The stored Jacobian under ``key``, replayed (None if absent or unusable); asked once
        per key and process (:func:`exact_jacobian` keeps what it gets)."""
        with self.lock:
            entry = self.entries.get(key)
        return self._load(entry)

    @staticmethod
    def _load(entry: object) -> tuple[Callable, tuple[int, ...]] | None:
        if not isinstance(entry, dict):
            return None
        source, names, shape = entry.get("source"), entry.get("names"), entry.get("out_shape")
        if not (
            isinstance(source, str)
            and isinstance(names, list)
            and all(isinstance(n, str) and n.isidentifier() for n in names)
            and isinstance(shape, list)
            and all(isinstance(n, int) for n in shape)
        ):
            return None
        compiled = _replay(source, names)
        return None if compiled is None else (compiled, tuple(shape))

    def put(self, key: str, compiled: Callable, out_shape: tuple[int, ...]) -> None:
        """Keep a Jacobian sympy just compiled (nothing if its code is not plain NumPy)."""
        portable = _portable(compiled)
        if portable is None or self.path is None:
            return
        source, names = portable
        with self.lock:
            self.entries[key] = {"source": source, "names": names, "out_shape": list(out_shape)}
            try:
                self._write()
            except OSError as exc:  # e.g. a read-only installation: sympy every time
                log.debug("cannot keep the exact Jacobians in %s: %s", self.path, exc)
                self.path = None

    def _write(self) -> None:
        if self.path is None:
            return
        entries = {**self._read(), **self.entries}  # another process may have added some
        self.cache.mkdir(exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.cache, prefix=f".{STORE_PREFIX}")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:  # mode 0600
                json.dump({"format": STORE_FORMAT, "entries": entries}, out, sort_keys=True)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        for stale in self.cache.glob(f"{STORE_PREFIX}*.json"):
            if stale != self.path:
                stale.unlink(missing_ok=True)


def _stored(target: Derivative, key: tuple) -> tuple[_Store, str] | None:
    """The store of the target's pack and the target's key in it (None: not kept on disk)."""
    from . import registry

    found = registry.owner(target)
    folder = None if found is None else found[0].folder
    if found is None or folder is None:
        return None
    label = found[1]
    if any(" at 0x" in value for _, value in key[3]):  # an input whose repr changes per run
        return None
    with _STORES_LOCK:
        store = _STORES.get(folder)
        if store is None:
            store = _STORES[folder] = _Store(folder)
    text = json.dumps([label, key[1], [[k, list(s)] for k, s in key[2]], key[3]])
    return store, text


def _compile(
    target: Derivative, inputs: Inputs, wrt: str, key: tuple
) -> tuple[Callable, tuple[int, ...]]:
    """The compiled exact Jacobian: from the pack's store, else from sympy (then stored)."""
    stored = _stored(target, key)
    if stored is not None:
        hit = stored[0].get(stored[1])
        if hit is not None:
            return hit
    import sympy as sp

    arrays = _arrays(inputs)
    values, flats = symbolic_inputs(inputs)
    outputs = symbolic_output(target, values, flats)
    jac = sp.Matrix(outputs).jacobian(flats[wrt])
    out_shape = () if target.upstream is not None else np.shape(call(target.forward, inputs))
    compiled = sp.lambdify([flats[k] for k in arrays], jac, modules="numpy")
    if stored is not None:
        stored[0].put(stored[1], compiled, tuple(out_shape))
    return compiled, tuple(out_shape)


def exact_jacobian(
    target: Derivative, inputs: Inputs, wrt: str
) -> tuple[np.ndarray, tuple[int, ...]]:
    """The exact Jacobian of the sympy form (outputs flattened x wrt flattened) at these inputs,
    and the output shape; compiled once per target, shapes and non-array inputs (and kept in the
    pack's store, so later processes need no sympy)."""
    arrays = _arrays(inputs)
    others = tuple(sorted((k, repr(v)) for k, v in inputs.items() if k not in arrays))
    key = (id(target), wrt, tuple((k, a.shape) for k, a in arrays.items()), others)
    entry = _COMPILED.get(key)
    if entry is None or entry[2] is not target:
        compiled, out_shape = _compile(target, inputs, wrt, key)
        entry = _COMPILED[key] = (compiled, out_shape, target)
    compiled, out_shape, _ = entry
    args = [np.asarray(a, dtype=np.float64).ravel() for a in arrays.values()]
    jac = np.array(compiled(*args), dtype=np.float64)
    return jac.reshape(-1, arrays[wrt].size), out_shape


def symbolic_derivative(target: Derivative, inputs: Inputs, wrt: str) -> list:
    """The exact derivative in sympy, entries in the answer's row-major order, over the symbols of
    :func:`symbolic_inputs` (for proofs of closed forms; no numbers involved)."""
    import sympy as sp

    values, flats = symbolic_inputs(inputs)
    jac = sp.Matrix(symbolic_output(target, values, flats)).jacobian(flats[wrt])
    if target.part == "diagonal":
        return [jac[i, i] for i in range(jac.rows)]
    return list(jac)


# --- known wrong answers ---------------------------------------------------------------------


def derived_alternatives(expected: np.ndarray, *, bound: float) -> dict[str, np.ndarray]:
    """Generic mistakes that need the reference: for a square matrix reference that is diagonal,
    its diagonal as a vector (``missing_diag``); otherwise its diagonal alone (``diag_only``)."""
    if expected.ndim != 2 or expected.shape[0] != expected.shape[1]:
        return {}
    diagonal = np.diag(np.diag(expected))
    if np.logical_and.reduce(np.abs(expected - diagonal) <= bound, axis=None):
        return {"missing_diag": np.diag(expected).copy()}
    return {"diag_only": diagonal}


def alternatives(target: Target, inputs: Inputs, expected: Reference) -> dict[str, object]:
    """Known wrong answers by tag: the target's misconceptions first, then the derived ones."""
    found: dict[str, object] = {}
    for m in target.misconceptions:
        value = call(m.answer, inputs)
        if value is None:
            continue
        if target.returns is None:
            found[m.tag] = np.asarray(value, dtype=np.float64)
        else:
            found[m.tag] = {k: np.asarray(v, dtype=np.float64) for k, v in dict(value).items()}
    if isinstance(target, Derivative):
        if isinstance(expected, np.ndarray):  # target.returns is None
            for tag, alt in derived_alternatives(
                expected, bound=target.tolerance.bound(expected)
            ).items():
                found.setdefault(tag, alt)
        else:
            for part, value in zip(target.returns or (), expected):
                for tag, alt in derived_alternatives(
                    value, bound=target.tolerance.bound(value)
                ).items():
                    slot = found.setdefault(tag, {})
                    if isinstance(slot, dict):
                        slot.setdefault(part, alt)
    return found
