"""Isolation of the evaluator process, applied inside it before any student code runs.

One path for every TA on Linux, root or not, built on unprivileged user namespaces:

1. As root only: the evaluator joins cgroups of its own (``cgroups.py``), so all processes of
   one submission share one budget; builds its private root (below) and becomes uid/gid 65534
   (nobody). A normal user keeps its own uid (no cgroup is delegated to it).
2. New user, mount, PID, network, IPC, UTS and cgroup namespaces. Inside, the evaluator is uid
   65534 and no process in it may create another user namespace. Resource limits counted per user
   (processes) are counted per user namespace, so per submission.
3. The first process of the new PID namespace builds a private root: a tmpfs holding the system
   libraries and the Python installation read-only plus writable ``/work`` (its notebook) and
   ``/tmp``, pivots into it and detaches the host's root. No network interface but a downed
   loopback.
4. Resource limits, every capability dropped, ``no_new_privs``, a fresh session keyring and a
   seccomp filter (:data:`DENIED`: keyrings, file locks and access notifications, memory that
   escapes the address-space limit, new sessions).

Where this is impossible (not Linux, user namespaces disabled, no libseccomp), the evaluator
refuses to start; only with ``isolate=False`` (``--unsafe-no-isolation``, or the Otter plugin in
a container) does it run in a fresh working directory with limits only (:func:`fallback_workdir`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import functools
import os
import resource
import stat
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

try:  # libseccomp through its ctypes binding (Debian: libseccomp2)
    import pyseccomp
except ImportError:  # pragma: no cover - depends on the machine
    pyseccomp = None
    _SECCOMP_PROBLEM = "the Python package pyseccomp is not installed (requirements.txt)"
except RuntimeError:  # pragma: no cover - pyseccomp found no libseccomp
    pyseccomp = None
    _SECCOMP_PROBLEM = "libseccomp is missing (Debian: apt-get install libseccomp2)"
else:
    _SECCOMP_PROBLEM = ""

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER = 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
NAMESPACES = (
    CLONE_NEWUSER
    | CLONE_NEWNS
    | CLONE_NEWPID
    | CLONE_NEWNET
    | CLONE_NEWIPC
    | CLONE_NEWUTS
    | CLONE_NEWCGROUP
)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 38, 47
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
KEYCTL_JOIN_SESSION_KEYRING = 1
LINUX_CAPABILITY_VERSION_3 = 0x20080522
NOBODY = 65534
ROOT_SOURCE = "math-primer-judge"
"""Source name of each evaluator's root tmpfs (``/proc/PID/mountinfo`` shows it: tests find
sandboxed processes by it)."""

# mount flags a bind mount must keep when remounted inside a user namespace (the kernel locks them)
_LOCKED_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one evaluator (documented defaults)."""

    memory_bytes: int = 2 * 1024**3
    """Address space of each process: 2 GiB."""
    submission_memory_bytes: int = 2 * 1024**3
    """Memory of all the submission's processes together, shared memory and its files included
    (a memory cgroup; as root only)."""
    cpu_seconds: int = 120
    """CPU time of each process."""
    cpu_cores: float = 1.0
    """CPU time per second of wall time for the whole submission (a CPU cgroup quota; as root
    only). Concurrent submissions also get equal CPU weights (see README)."""
    file_bytes: int = 16 * 1024**2
    """Largest file the student's code may write (in its private /work)."""
    processes: int = 64
    """Processes and threads of the whole submission (counted in its own user namespace, and by a
    pids cgroup as root): bounds fork bombs."""
    open_files: int = 128
    scratch_bytes: int = 64 * 1024**2
    """Size of the private root's tmpfs: the notebook, /work and /tmp together."""


class SandboxUnavailable(Exception):
    """The machine does not allow the sandbox here (the message says why)."""


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
for _function in ("mount", "umount2", "unshare", "prctl", "capset", "syscall", "fork"):
    getattr(_libc, _function)  # looked up once, here (in the template), not in every evaluator


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise SandboxUnavailable(f"{what}: {os.strerror(number)}")


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


@functools.cache
def _syscall_number(name: str) -> int:
    """A system call's number on this machine, from libseccomp's table (looked up once: the
    template asks for the calls its evaluators make, see :func:`compile_seccomp`)."""
    if pyseccomp is None:
        raise SandboxUnavailable(_SECCOMP_PROBLEM)
    return pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)


def _syscall(name: str, *args: object) -> int:
    """A system call by name (numbers from libseccomp's table for this machine)."""
    return _libc.syscall(ctypes.c_long(_syscall_number(name)), *args)


def fork() -> int:
    """:func:`os.fork` for the evaluator's single-threaded process, through the C library alone.

    ``os.fork`` also runs the interpreter's after-fork work in the child (reseeding ``random``,
    ``threading``'s bookkeeping of other threads, re-creating locks other threads might hold):
    about 200 of the template's memory pages written, so copied, in every evaluator. With no
    other thread, there is nothing to repair: the child's ``random`` state is its parent's
    (reseeded when the template forked it), and the parent never uses it. A process with other
    threads forks through ``os.fork``."""
    if threading.active_count() != 1:
        return os.fork()
    pid = _libc.fork()
    if pid < 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    return pid


def write_setting(path: str, text: str) -> None:
    """Write a kernel setting (``/proc``, ``/sys``); SandboxUnavailable if it is refused."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            os.write(fd, text.encode())  # one write, as the kernel's settings files want
        finally:
            os.close(fd)
    except OSError as exc:
        raise SandboxUnavailable(f"writing {path}: {exc.strerror}") from None


def set_parent_death_signal(signal_number: int) -> None:
    """Die with this signal when the parent process dies."""
    _libc.prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0)


def set_dumpable(dumpable: bool) -> None:
    """Whether this process's ``/proc/self`` files belong to its own uid (needed to write its
    uid map after a change of uid) rather than to root."""
    _libc.prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)


def unavailable_reason() -> str | None:
    """Why the sandbox cannot work on this machine, as far as can be told without trying."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux namespaces (this is {sys.platform})"
    if pyseccomp is None:
        return _SECCOMP_PROBLEM
    for path, name in (
        ("/proc/sys/user/max_user_namespaces", "user.max_user_namespaces"),
        ("/proc/sys/kernel/unprivileged_userns_clone", "kernel.unprivileged_userns_clone"),
    ):
        if _read_setting(path) == b"0":
            return f"user namespaces are disabled on this machine ({name} = 0)"
    return None


def _read_setting(path: str) -> bytes | None:
    """A kernel setting (``/proc/sys``), or None if it cannot be read (plain system calls: each
    evaluator asks, and a text file object is much more Python work in each)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 64).strip()
    except OSError:
        return None
    finally:
        os.close(fd)


# --- namespaces and the private root --------------------------------------------------------------


def become_nobody() -> None:
    """As root: become uid/gid 65534 for good (before creating the user namespace)."""
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def mount_point() -> Path:
    """An empty folder of this user's in /tmp, over which each evaluator mounts its private root
    (in its own mount namespace: the host's folder stays empty)."""
    path = _mount_point_for(os.geteuid())
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise SandboxUnavailable(f"{path} exists but is not a folder of this user")
    return path


@functools.lru_cache(maxsize=4)
def _mount_point_for(uid: int) -> Path:
    return Path("/tmp") / f".{ROOT_SOURCE}-{uid}"


def enter_namespaces() -> None:
    """New user, mount, PID (for the next fork), network, IPC, UTS and cgroup namespaces; inside,
    this process is uid/gid 65534 and no further user namespace can be created."""
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(NAMESPACES), "unshare (user namespaces unavailable)")
    write_setting("/proc/self/setgroups", "deny")
    write_setting("/proc/self/uid_map", f"{NOBODY} {uid} 1")
    write_setting("/proc/self/gid_map", f"{NOBODY} {gid} 1")
    write_setting("/proc/sys/user/max_user_namespaces", "0")  # this namespace's own limit


def _exposed() -> list[str]:
    """Read-only folders the evaluator needs: the system libraries and Python itself."""
    return list(_exposed_for(tuple(p for p in sys.path if p and "site-packages" in p)))


@functools.lru_cache(maxsize=8)
def _exposed_for(site_packages: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`_exposed` for these ``site-packages`` folders of ``sys.path`` (resolved once by
    the evaluators' template, for the folders its evaluators have on their path)."""
    candidates = ["/usr", "/lib", "/lib64", "/bin", "/etc/alternatives", "/etc/ld.so.cache"]
    candidates += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    candidates += list(site_packages)
    dirs: list[str] = []
    for path in sorted({os.path.realpath(c) for c in candidates if os.path.exists(c)}):
        if not any(path == s or path.startswith(s + "/") for s in dirs):
            dirs.append(path)
    return tuple(dirs)


@dataclass(frozen=True)
class _RootPlan:
    """What :func:`build_root` makes in the root's tmpfs (paths relative to the root), resolved
    once in the template from the host's folders; each evaluator only makes it."""

    folders: tuple[str, ...]
    """Folders to create, each after its parent."""
    files: tuple[str, ...]
    """Empty files to create (mount points of single files and devices)."""
    links: tuple[tuple[str, str], ...]
    """Symbolic links (merged /usr: ``lib`` -> ``usr/lib``) and their text."""
    binds: tuple[tuple[str, str, int], ...]
    """Host path, its mount point, and the flags of its read-only remount (0: none)."""


_DEVICES = ("null", "zero", "urandom", "random")
_WRITABLE = ("work", "tmp")


@functools.lru_cache(maxsize=8)
def _plan_for(exposed: tuple[str, ...]) -> _RootPlan:
    """The :class:`_RootPlan` for these exposed folders and files."""
    folders: list[str] = []
    files: list[str] = []

    def folder(path: str) -> None:
        if path and path not in folders:
            folder(os.path.dirname(path))
            folders.append(path)

    binds = []
    for source in exposed:
        target = source.lstrip("/")
        if os.path.isdir(source):
            folder(target)
        else:
            folder(os.path.dirname(target))
            files.append(target)
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID
        current = os.statvfs(source).f_flag
        for st_flag, ms_flag in _LOCKED_FLAGS:  # a user namespace may not drop these
            if current & st_flag:
                flags |= ms_flag
        binds.append((source, target, flags))
    links = tuple(
        (link.lstrip("/"), os.readlink(link))
        for link in ("/bin", "/lib", "/lib64", "/sbin")  # merged /usr: /lib -> usr/lib
        if os.path.islink(link) and link.lstrip("/") not in folders + files
    )
    for device in _DEVICES:
        folder("dev")
        files.append(f"dev/{device}")
        binds.append((f"/dev/{device}", f"dev/{device}", 0))
    for writable in _WRITABLE:
        folder(writable)
    return _RootPlan(tuple(folders), tuple(files), links, tuple(binds))


def _root_plan() -> _RootPlan:
    return _plan_for(tuple(_exposed()))


def private_mount_namespace() -> None:
    """As root: a mount namespace of its own, where the private root is built before the switch
    to uid 65534 (which may not traverse the folders leading to root's Python, e.g. pyenv's)."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare (mount namespace)")


def build_root(
    root: Path,
    notebook_json: bytes | None,
    *,
    tag: str,
    limits: Limits,
    name: str = "submission.ipynb",
) -> None:
    """Make ``root`` a private tmpfs holding the exposed folders read-only, a few devices and a
    writable /work (with the notebook; a spare evaluator's comes later, see
    ``evaluator.take_submission``) and /tmp (in this process's own mount namespace)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount(
        f"{ROOT_SOURCE}:{tag}",
        str(root),
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={limits.scratch_bytes},mode=755",
    )
    plan = _root_plan()
    base = f"{root}/"
    for path in plan.folders:
        os.mkdir(base + path)
    for path in plan.files:
        os.close(os.open(base + path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
    for path, text in plan.links:
        os.symlink(text, base + path)
    for source, target, flags in plan.binds:
        _mount(source, base + target, None, (MS_BIND | MS_REC) if flags else MS_BIND)
        if flags:  # read-only, keeping the flags a user namespace may not drop
            _mount(None, base + target, None, flags)
    for writable in _WRITABLE:
        os.chmod(base + writable, 0o1777)
    if notebook_json is not None:  # else it comes later (a spare evaluator)
        with open(f"{base}work/{name}", "xb") as notebook:
            notebook.write(notebook_json)


PR_SET_CHILD_SUBREAPER = 36


def reap_orphans() -> None:
    """Make this process (the evaluators' template) the reaper of its descendants' orphans.

    An evaluator's outside process (``evaluator._wait_outside``) never reaps its PID 1, so that
    the pid stays the judge's to signal; when the judge then kills it, the dead PID 1 is
    reparented here rather than to the machine's init (which, in a container, may never reap
    it: each zombie would hold a pid of the TA's budget). The forkserver's loop reaps every
    child; it warns about children it did not fork, which these are, so that warning is
    silenced."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    warnings.filterwarnings(
        "ignore", message="forkserver: waitpid returned unexpected pid", category=UserWarning
    )


def outside_pid() -> int:
    """This process's pid in the PID namespace of the host's ``/proc`` (the judge's), read
    before the private root hides it: inside its own PID namespace, PID 1 is 1."""
    return int(os.readlink("/proc/self"))


def enter_root(root: Path) -> None:
    """Pivot into the private root, detach the host's root and work in /work.

    The root is first bound onto itself: a mount copied from root's mount namespace is locked in
    the user namespace and cannot be pivoted into; its bound copy can (its contents stay locked
    read-only)."""
    _mount(str(root), str(root), None, MS_BIND | MS_REC)
    os.chdir(root)
    _check(_syscall("pivot_root", b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "detaching the host's root")
    os.chdir("/work")


# --- the last steps before student code ---------------------------------------------------------


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
            _soft, hard = resource.getrlimit(name)
            if hard == resource.RLIM_INFINITY or value <= hard:
                raise
            resource.setrlimit(name, (min(value, hard), hard))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_NO_CAPS = (_CapHeader(LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)())
"""What ``capset`` is given to keep no capability: this process, and empty sets (made once)."""


def drop_capabilities() -> None:
    """Give up every capability (those the user namespace granted), for good: bounding set,
    ambient, effective, permitted and inheritable; then ``no_new_privs``."""
    for capability in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            break  # EINVAL past the last capability this kernel knows
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _check(_libc.capset(ctypes.byref(_NO_CAPS[0]), ctypes.byref(_NO_CAPS[1])), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def fresh_session_keyring() -> None:
    """Leave the inherited session keyring (the TA's login keyring) for a new, empty one."""
    if _syscall("keyctl", ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None) < 0:
        number = ctypes.get_errno()
        if number != errno.ENOSYS:  # a kernel without keyrings has nothing to leave
            raise SandboxUnavailable(f"joining a new session keyring: {os.strerror(number)}")


DENIED: tuple[tuple[str, int, str], ...] = (
    ("add_key", errno.EPERM, "kernel keyrings are shared across namespaces"),
    ("keyctl", errno.EPERM, "kernel keyrings are shared across namespaces"),
    ("request_key", errno.EPERM, "kernel keyrings are shared across namespaces"),
    ("flock", errno.ENOLCK, "a lock on a shared read-only file is seen by other evaluators"),
    ("inotify_init", errno.EPERM, "access events on shared files are seen across evaluators"),
    ("inotify_init1", errno.EPERM, "access events on shared files are seen across evaluators"),
    ("fanotify_init", errno.EPERM, "access events on shared files are seen across evaluators"),
    ("memfd_create", errno.EPERM, "memory outside the per-process address-space limit"),
    ("shmget", errno.EPERM, "memory outside the per-process address-space limit"),
    ("setsid", errno.EPERM, "a session of its own is a scheduling group of its own (autogroup)"),
)
"""System calls the student's code may not make: name, the error it gets, and why."""

DENIED_FCNTL: tuple[int, ...] = (
    fcntl.F_GETLK,
    fcntl.F_SETLK,
    fcntl.F_SETLKW,
    getattr(fcntl, "F_OFD_GETLK", 36),
    getattr(fcntl, "F_OFD_SETLK", 37),
    getattr(fcntl, "F_OFD_SETLKW", 38),
    getattr(fcntl, "F_SETLEASE", 1024),
    getattr(fcntl, "F_GETLEASE", 1025),
    getattr(fcntl, "F_NOTIFY", 1026),
)
"""``fcntl`` commands refused with ENOLCK: record locks, leases and directory notifications (the
same channels as ``flock`` and ``inotify`` through shared files)."""


def _seccomp_rules():
    """The filter of :data:`DENIED` and :data:`DENIED_FCNTL` (libseccomp's, not yet loaded)."""
    if pyseccomp is None:
        raise SandboxUnavailable(_SECCOMP_PROBLEM)
    rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for name, number, _why in DENIED:
        rules.add_rule(pyseccomp.ERRNO(number), name)
    for command in DENIED_FCNTL:
        rules.add_rule(
            pyseccomp.ERRNO(errno.ENOLCK), "fcntl", pyseccomp.Arg(1, pyseccomp.EQ, command)
        )
    return rules


_PROGRAM: bytes = b""
"""The seccomp filter as libseccomp compiles it (BPF), once, in the evaluators' template
(:func:`compile_seccomp`); empty until then."""
_LOADABLE: tuple = ()
""":data:`_PROGRAM` as ``prctl`` takes it (a ``sock_fprog`` and the buffer it points to), made
with it."""


def seccomp_program() -> bytes:
    """The BPF program libseccomp makes of the filter (what :func:`install_seccomp` loads)."""
    rules = _seccomp_rules()
    read, write = os.pipe()
    try:
        with os.fdopen(write, "wb") as sink:  # a few hundred bytes: within the pipe's buffer
            rules.export_bpf(sink)
        return os.read(read, 1 << 16)
    finally:
        os.close(read)


def compile_seccomp() -> None:
    """Compile the filter once (the template does, before any evaluator is forked): each
    evaluator then loads the same program without compiling it again."""
    global _PROGRAM, _LOADABLE
    _PROGRAM = seccomp_program()
    buffer = ctypes.create_string_buffer(_PROGRAM, len(_PROGRAM))
    _LOADABLE = (_SockFprog(len(_PROGRAM) // 8, ctypes.addressof(buffer)), buffer)
    for name in ("pivot_root", "keyctl"):  # the calls made by name before the filter is loaded
        _syscall_number(name)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp() -> None:
    """Load the seccomp filter: every call in :data:`DENIED` and :data:`DENIED_FCNTL` fails,
    any other architecture's system calls kill the process, the rest is allowed.

    The program compiled by the template is loaded as libseccomp loads it (``no_new_privs``,
    then the filter); without one, libseccomp compiles and loads the filter here."""
    if pyseccomp is None:
        raise SandboxUnavailable(_SECCOMP_PROBLEM)
    if not _PROGRAM:
        try:
            _seccomp_rules().load()
        except OSError as exc:
            raise SandboxUnavailable(f"seccomp: {exc.strerror}") from None
        return
    fprog, _buffer = _LOADABLE
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


def sandboxed_pids(tag_prefix: str = "") -> list[int]:
    """Processes (visible to this one) whose root is an evaluator's private root, optionally only
    those of evaluators whose tag starts with ``tag_prefix`` (a judge's pid and a dash)."""
    wanted = f"{ROOT_SOURCE}:{tag_prefix}"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            lines = Path(f"/proc/{entry}/mountinfo").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(" - ", 1)
            if len(fields) == 2 and fields[0].split()[4:5] == ["/"]:
                source = fields[1].split()[1:2]
                if source and source[0].startswith(wanted):
                    found.append(int(entry))
                break
    return sorted(found)


def fallback_workdir(notebook_json: bytes | None, *, name: str = "submission.ipynb") -> Path:
    """Without isolation: a fresh private directory holding only the notebook (none yet for a
    spare evaluator)."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="mp-eval-"))
    work.chmod(0o777)
    if notebook_json is not None:
        (work / name).write_bytes(notebook_json)
    os.chdir(work)
    return work
