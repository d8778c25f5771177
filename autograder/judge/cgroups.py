"""Cgroups of one evaluator (root only, cgroup v1): one budget for all its processes.

Each evaluator joins a memory, a pids and a CPU group of its own, nested in the judge's own
group of each controller (``<controller>/<judge's group>/math-primer-judge/<judge pid>-<n>``), so
that a submission's processes share 2 GiB of memory (its tmpfs and shared memory included), 64
processes, an equal CPU weight and at most one core. The judge removes the groups when the
evaluator is killed, and groups left by a judge that died when the next one starts. Nothing here
works for a normal user: no cgroup is delegated to one (see the README for what replaces it).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .sandbox import Limits, SandboxUnavailable, write_setting

CGROUP_MOUNT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "math-primer-judge"
"""Folder, inside the judge's own cgroup of each controller, holding one group per evaluator."""


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup v1 path per controller (``/proc/self/cgroup``)."""
    own: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return own
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            if controller:
                own[controller] = path
    return own


_PARENTS: dict[int, dict[str, Path]] = {}
"""Process id -> the folder of each controller holding its evaluators' groups (read once per
process: a judge worker forked from the template reads its own)."""


def _parents() -> dict[str, Path]:
    """Per controller (memory, pids, cpu), the folder of this process's evaluator groups; empty
    where there is none (not root, no cgroup v1 hierarchies)."""
    pid = os.getpid()
    parents = _PARENTS.get(pid)
    if parents is None:
        parents = {}
        if os.geteuid() == 0:
            own = _own_cgroups()
            for controller in ("memory", "pids", "cpu"):
                mount = CGROUP_MOUNT / controller
                if controller not in own or not (mount / "cgroup.procs").exists():
                    parents = {}
                    break
                parents[controller] = mount / own[controller].lstrip("/") / CGROUP_PARENT
        _PARENTS.clear()
        _PARENTS[pid] = parents
    return parents


def dirs_for(name: str) -> dict[str, str]:
    """Per controller (memory, pids, cpu), the cgroup an evaluator called ``name`` joins, nested
    in this process's own; empty where that is impossible (not root, no cgroup v1 hierarchies)."""
    return {controller: str(parent / name) for controller, parent in _parents().items()}


def create(dirs: dict[str, str], limits: Limits) -> None:
    """Create an evaluator's cgroups and set the submission's budget (judge side, before the
    evaluator starts: the evaluator itself only joins them, :func:`join`)."""
    settings = {
        "memory": {"memory.limit_in_bytes": limits.submission_memory_bytes},
        "pids": {"pids.max": limits.processes},
        "cpu": {
            "cpu.shares": 1024,
            "cpu.cfs_period_us": 100_000,
            "cpu.cfs_quota_us": max(1000, int(limits.cpu_cores * 100_000)),
        },
    }
    for controller, folder in dirs.items():
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise SandboxUnavailable(f"creating cgroup {folder}: {exc.strerror}") from None
        for name, value in settings[controller].items():
            write_setting(os.path.join(folder, name), str(value))


def join(dirs: dict[str, str]) -> None:
    """Move this process into the evaluator's cgroups (made by :func:`create`)."""
    pid = str(os.getpid())
    for folder in dirs.values():
        write_setting(folder + "/cgroup.procs", pid)


def remove(dirs: dict[str, str], *, wait: float = 2.0) -> None:
    """Kill whatever is left in an evaluator's cgroups and remove them (judge side).

    An empty group (the evaluator is gone, as after :meth:`Evaluator.kill`) is removed at once;
    one that is not is emptied (its processes killed) until it can be, or ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    for folder in dirs.values():
        while True:
            try:
                os.rmdir(folder)
                break
            except FileNotFoundError:
                break
            except OSError:  # busy: processes are left in it
                pass
            try:
                pids = Path(folder, "cgroup.procs").read_text().split()
            except OSError:
                break
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError, ValueError):
                    pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)


def sweep() -> None:
    """Remove evaluator cgroups left by judges that died (names start with the judge's pid)."""
    for folder in set(dirs_for("x").values()):
        parent = Path(folder).parent
        for child in parent.glob("*-*") if parent.is_dir() else ():
            owner = child.name.split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                try:
                    child.rmdir()
                except OSError:
                    pass
