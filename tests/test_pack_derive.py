"""The store of compiled exact Jacobians (autograder/pack/derive.py): does a later process get the
very same references without sympy, and is a store it should not trust, or a stale one, ignored?
Each process is a fresh interpreter on a copy of the tiny fixture pack."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from autograder.pack import derive
from helpers import FIXTURE_PACKS, json_of_script

REFERENCES = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
from autograder.checks import runner
from autograder.pack import registry
pack = registry.load(Path(sys.argv[1]))
digest, count = hashlib.sha256(), 0
for q in pack.questions:
    for target in q.functions:
        for case in q.cases:
            for key in ("ada", "bob"):
                for instance in runner.draw(pack, q.id, case.name, target, key=key):
                    expected = instance.expected
                    for part in expected if isinstance(expected, tuple) else (expected,):
                        digest.update(np.ascontiguousarray(part).tobytes())
                        count += 1
print(json.dumps({"digest": digest.hexdigest(), "count": count, "sympy": "sympy" in sys.modules}))
"""


def references(pack: Path) -> dict:
    """Every reference of the pack's cases for two students, hashed, in a fresh interpreter;
    and whether sympy was imported."""
    return json_of_script(REFERENCES, str(pack))


def stores(pack: Path) -> list[Path]:
    return sorted((pack / "__pycache__").glob(f"{derive.STORE_PREFIX}*.json"))


@pytest.fixture()
def pack(tmp_path: Path) -> Path:
    """A copy of the tiny pack, with no store yet."""
    copy = tmp_path / "tiny"
    shutil.copytree(FIXTURE_PACKS / "tiny", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_a_second_process_replays_the_same_jacobians_without_sympy(pack: Path) -> None:
    """Does the first process compile with sympy and store, and the second get bit-identical
    references without importing sympy?"""
    cold = references(pack)
    assert cold["sympy"] and cold["count"] > 0
    (store,) = stores(pack)
    assert json.loads(store.read_text())["entries"]
    assert store.stat().st_mode & 0o077 == 0
    warm = references(pack)
    assert not warm["sympy"]
    assert warm["digest"] == cold["digest"]


def test_a_store_others_may_write_is_ignored(pack: Path) -> None:
    """Is a store writable by others left unread (sympy again, same references)?"""
    cold = references(pack)
    (store,) = stores(pack)
    os.chmod(store, 0o666)
    again = references(pack)
    assert again["sympy"] and again["digest"] == cold["digest"]


def test_a_changed_pack_does_not_use_the_old_store(pack: Path) -> None:
    """After an edit of the pack's files, is sympy used again and the old store replaced?"""
    cold = references(pack)
    (old,) = stores(pack)
    spec = pack / "spec.py"
    spec.write_text(spec.read_text() + "\n# edited\n")
    again = references(pack)
    assert again["sympy"] and again["digest"] == cold["digest"]
    (new,) = stores(pack)
    assert new != old


@pytest.mark.parametrize(
    "source",
    [
        "import os\ndef _lambdifygenerated(x):\n    return x\n",
        "def _lambdifygenerated(x):\n    return open(x)\n",
        "def other(x):\n    return x\n",
        "def _lambdifygenerated(x:\n",
    ],
    ids=["extra-statement", "not-numpy", "other-name", "syntax"],
)
def test_a_stored_source_that_is_not_one_numpy_function_is_refused(source: str) -> None:
    """Is a stored entry that is not exactly one function of NumPy names refused (so sympy
    compiles it again)?"""
    assert derive._replay(source, ["open"] if "open" in source else []) is None


def test_a_stored_source_is_replayed_with_numpy_names() -> None:
    """Does a stored source run with its names bound to NumPy's?"""
    compiled = derive._replay(
        "def _lambdifygenerated(a):\n    [x] = a\n    return array([[exp(x)]])\n",
        ["array", "exp"],
    )
    assert compiled is not None
    assert compiled([0.0]).tolist() == [[1.0]]
