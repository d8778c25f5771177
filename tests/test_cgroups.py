"""The evaluators' cgroups (autograder/judge/cgroups.py): as root, with cgroup v1 only."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from autograder.judge import cgroups
from autograder.judge.sandbox import write_setting

DIRS = cgroups.dirs_for(f"test-{uuid.uuid4().hex[:8]}")
pytestmark = pytest.mark.skipif(not DIRS, reason="needs root and cgroup v1 hierarchies")


def test_a_group_left_with_processes_is_emptied_and_removed():
    """Does removing an evaluator's groups kill a process still in them (a child that outlived
    the evaluator) and remove every group, not just the empty ones?"""
    child = subprocess.Popen(["sleep", "60"])
    try:
        pid = str(child.pid)
        for folder in DIRS.values():  # as cgroups.join would, for the child
            os.makedirs(folder, exist_ok=True)
            write_setting(os.path.join(folder, "cgroup.procs"), pid)
        assert all(pid in Path(d, "cgroup.procs").read_text().split() for d in DIRS.values())
        cgroups.remove(DIRS)
        assert child.wait(timeout=5) == -9
        assert not any(os.path.exists(d) for d in DIRS.values())
    finally:
        child.kill()
        cgroups.remove(DIRS)


def test_empty_groups_are_removed_at_once():
    """Are an evaluator's groups that nothing is left in removed (and removing them twice is no
    error)?"""
    for folder in DIRS.values():
        os.makedirs(folder, exist_ok=True)
    cgroups.remove(DIRS, wait=0)
    assert not any(os.path.exists(d) for d in DIRS.values())
    cgroups.remove(DIRS, wait=0)
