"""Grading engines. Each turns one submission into one result dict, never raising."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Literal, overload

import psutil

from .. import interrupts


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a subprocess started with ``start_new_session=True`` and everything it started:
    its process group, and the descendants that left it (Jupyter starts each kernel in a session
    of its own, so ``otter run``'s kernel is not in the group)."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for process in descendants:
        try:
            process.kill()  # psutil checks it is still the same process (no pid reuse)
        except psutil.Error:
            pass
    proc.wait()


@overload
def wait_stoppable(proc: subprocess.Popen, *, timeout: float, output: Literal[True]) -> str: ...
@overload
def wait_stoppable(
    proc: subprocess.Popen, *, timeout: float, output: Literal[False] = False
) -> None: ...
def wait_stoppable(proc: subprocess.Popen, *, timeout: float, output: bool = False) -> str | None:
    """Wait for ``proc`` like ``communicate`` (``output``: its stdout) or ``wait``, but check
    every ``interrupts.POLL_SECONDS`` whether the batch is stopping.

    Raises:
        subprocess.TimeoutExpired: ``timeout`` seconds passed.
        interrupts.Cancelled: the batch is stopping (the caller kills ``proc``).
    """
    deadline = time.monotonic() + timeout
    while True:
        interrupts.check()
        step = min(interrupts.POLL_SECONDS, max(deadline - time.monotonic(), 0.0))
        try:
            if output:
                return proc.communicate(timeout=step)[0]
            proc.wait(timeout=step)
            return None
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(proc.args, timeout) from None
