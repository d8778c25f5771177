"""Shared builders of the review app's tests: a graded demo folder and hostile submissions."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import nbformat

from autograder import grading
from autograder.pack import Pack, load
from autograder.samples import fill, load_samples, write_samples

TRANSPOSED_COPIES = ("bea_mistakes", "bo_mistakes")
"""Extra copies of the demo's ``ben_mistakes``: q1b's ``transposed`` group then has three."""

HOSTILE_NAME = "<img src=x onerror=window.__pwned=1>"
"""A student id (file name) that is markup."""
HOSTILE_ROSTER_NAME = (
    '<b onmouseover="window.__pwned=1">Mallory</b><script>window.__pwned=1</script>'
)
HOSTILE_FILE = "<svg onload=window.__pwned=1>.ipynb"
"""A notebook file name (inside a student folder) that is markup."""

HOSTILE_CODE = '''def jacobian_Wx(W, x):
    """</pre></code><script>window.__pwned=1</script>"""
    raise ValueError("<img src=x onerror=window.__pwned=1><script>window.__pwned=1</script>")
'''

HOSTILE_DERIVATION = r"""**Your derivation**

<script>window.__pwned=1</script>
<img src=x onerror="window.__pwned=1">
<iframe src="https://evil.example/"></iframe>
<style>body { display: none }</style>
[click me](javascript:window.__pwned=1) and <javascript:window.__pwned=1>
[data link](data:text/html,<script>window.__pwned=1</script>)
<a href="javascript:window.__pwned=1">raw link</a>
![tracker](https://evil.example/pixel.png)
$\href{javascript:window.__pwned=1}{click}$ and $\url{javascript:window.__pwned=1}$
$\text{<img src=x onerror=window.__pwned=1>}$
$x</math><img src=x onerror=window.__pwned=1>$
$\input{/etc/passwd}$ $\include{/etc/shadow}$ $\def\a{\a\a}\a$
$\style{background:url(https://evil.example/x)}{y}$
$$J_z = W \quad\text{so}\quad (J_z)_{ij} = W_{ij}$$
"""

HOSTILE_TEXTS = ("<script>window.__pwned=1</script>", "[click me](javascript:window.__pwned=1)")
"""Pieces of the hostile derivation that must show as text."""


ASSIGNMENT = "math_primer"
"""The pack of the demo and hostile batches."""


def write_demo(folder: Path, *, template_path: Path, pack: Pack | str = ASSIGNMENT) -> Path:
    """The demo batch (``python -m autograder demo``'s) plus two copies of ``ben_mistakes``."""
    write_samples(folder, pack=pack, template_path=template_path)
    for name in TRANSPOSED_COPIES:
        shutil.copy(folder / "ben_mistakes.ipynb", folder / f"{name}.ipynb")
    return folder


def write_hostile(folder: Path, *, template_path: Path) -> Path:
    """Two hostile submissions: markup in the id, code, messages, derivations and file name."""
    template = nbformat.read(str(template_path), as_version=4)
    folder.mkdir(parents=True, exist_ok=True)
    correct = load_samples(ASSIGNMENT).correct
    evil = fill(template, {**correct, "q1a": HOSTILE_CODE}, pack=load(ASSIGNMENT))
    check = next(i for i, c in enumerate(evil.cells) if 'grader.check("q1a")' in "".join(c.source))
    evil.cells.insert(check + 1, nbformat.v4.new_markdown_cell(HOSTILE_DERIVATION))
    nbformat.write(evil, str(folder / f"{HOSTILE_NAME}.ipynb"))
    (folder / "mallory").mkdir(exist_ok=True)
    nbformat.write(evil, str(folder / "mallory" / HOSTILE_FILE))
    return folder


def grade(submissions: Path, out: Path, **kw) -> grading.GradeRun:
    """Grade with the judge, as ``grade`` does."""
    kw.setdefault("assignment", ASSIGNMENT)
    return grading.grade(submissions=submissions, out=out, jobs=2, **kw)


@contextmanager
def serving(out: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``python -m autograder review OUT --port 0`` as a TA does; yield (URL, process).

    The URL is the one printed, with its token. The server is stopped with SIGINT (Ctrl-C).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "autograder", "review", str(out), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://\S+", line)
        if match is None:
            raise AssertionError(f"no URL printed: {line!r} {process.stderr.read()[-2000:]}")
        _wait_listening(match[0])
        yield match[0], process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(url: str, timeout: float = 30.0) -> None:
    """Wait until the server accepts connections."""
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
