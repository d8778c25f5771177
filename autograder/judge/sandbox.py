"""Isolation of the evaluator process, applied inside it before any student code runs.

As root on Linux (the CI machine, a TA's server): new mount, network, IPC, UTS and PID namespaces,
a private root holding only the Python installation read-only plus an empty writable ``/work``,
no network interface but a downed loopback, then the unprivileged uid/gid 65534 (nobody) and
resource limits. Elsewhere (no root, no namespaces): resource limits, a session of its own and a
fresh working directory only, with a loud warning.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    """Resource limits of one evaluator (documented defaults)."""

    memory_bytes: int = 2 * 1024**3
    """Address-space limit: 2 GiB."""
    cpu_seconds: int = 120
    """CPU time of the whole evaluator process."""
    file_bytes: int = 16 * 1024**2
    """Largest file the student's code may write (in its private /work)."""
    processes: int = 64
    """Processes and threads of the unprivileged user (bounds fork bombs)."""
    open_files: int = 128


class SandboxUnavailable(Exception):
    """The machine does not allow namespaces here (not root, or a container without them)."""


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxUnavailable(f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def set_parent_death_signal(signal_number: int) -> None:
    """Die with this signal when the parent process dies."""
    _libc.prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0)


def unshare_namespaces() -> None:
    """Enter new mount, network, IPC, UTS and PID namespaces (PID applies to the next fork)."""
    if os.geteuid() != 0:
        raise SandboxUnavailable("not running as root")
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
    _check(_libc.unshare(flags), "unshare")


def _exposed_dirs() -> list[str]:
    """Read-only directories the evaluator needs: the system libraries and Python itself."""
    candidates = ["/usr", "/lib", "/lib64", "/bin", "/etc/alternatives", "/etc/ld.so.cache"]
    candidates += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    candidates += [p for p in sys.path if p and "site-packages" in p]
    seen: list[str] = []
    for path in sorted({os.path.realpath(c) for c in candidates if os.path.exists(c)}):
        if not any(path == s or path.startswith(s + "/") for s in seen):
            seen.append(path)
    return seen


def build_root(root: Path, notebook_json: bytes, *, name: str = "submission.ipynb") -> None:
    """Make ``root`` a private tmpfs holding the exposed dirs read-only and a writable /work."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root.mkdir(parents=True, exist_ok=True)
    _mount("tmpfs", str(root), "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=755")
    for path in _exposed_dirs():
        target = root / path.lstrip("/")
        if os.path.isdir(path):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        _mount(path, str(target), None, MS_BIND | MS_REC)
        _mount(None, str(target), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
    for device in ("null", "zero", "urandom", "random"):
        target = root / "dev" / device
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        _mount(f"/dev/{device}", str(target), None, MS_BIND)
    for writable in ("work", "tmp"):
        (root / writable).mkdir(mode=0o1777, exist_ok=True)
        os.chmod(root / writable, 0o1777)
    (root / "work" / name).write_bytes(notebook_json)


def enter_root(root: Path) -> None:
    """chroot into the private root and work in /work."""
    os.chroot(str(root))
    os.chdir("/work")


def drop_privileges() -> None:
    """Become nobody, for good."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def apply_limits(limits: Limits) -> None:
    """Resource limits on memory, CPU, file size, processes and open files; no core dumps."""
    for name, value in (
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ):
        try:
            resource.setrlimit(name, (value, value))
        except (ValueError, OSError):
            soft, hard = resource.getrlimit(name)
            if hard == resource.RLIM_INFINITY or value <= hard:
                raise
            resource.setrlimit(name, (min(value, hard), hard))


def fallback_workdir(notebook_json: bytes, *, name: str = "submission.ipynb") -> Path:
    """Without namespaces: a fresh private directory holding only the notebook."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="mp-eval-"))
    work.chmod(0o777)
    (work / name).write_bytes(notebook_json)
    os.chdir(work)
    return work
