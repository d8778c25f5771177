"""How does `grade` scale? Time per submission, start-up and peak memory against N.

Usage:
    python benchmarks/scale.py [--n 100 1000 10000] [--jobs 2] [--otter 5] [--startup-repeats 5]
                               [--kit LABEL=PATH ...] [--max-n LABEL=N ...] [--dask [--dask-n N]]
                               [--plot docs/images/scale.png] [--table scale.md]

Generates N submissions from the kit's samples (``autograder/samples.py``): a mix of 34 notebooks
(the correct answers, the 10 equivalent forms, every typical mistake except the infinite loop, and
the blank template), copied under distinct student ids. Then, side by side in one run:

- ``otter run``: plain sequential ``python -m otter run`` on the first ``--otter`` notebooks of the
  mix (the baseline of the ratio);
- start-up: ``grade`` of one submission through the CLI, median of ``--startup-repeats`` runs;
- for each N: ``python -m autograder grade SUBS --out OUT --jobs J`` (a fresh OUT, so nothing
  comes from the result cache), sampling the memory of the whole process tree (the CLI, the
  evaluators' template, the judge workers, the evaluators) every 0.1 s with psutil: the sum of
  RSS (each process's resident pages, so a page the template shares with its forks counts once
  per process) and the sum of PSS (each shared page divided among the processes sharing it: the
  memory the tree really holds);
- with ``--dask``, the largest N (or ``--dask-n``) again on a Dask LocalCluster with 2 worker
  processes (``grade --scheduler``), its workers' memory included.

Each ``--kit LABEL=PATH`` is another checkout of the kit to grade with (e.g. an export of an
older commit: ``git archive COMMIT | tar -x -C /tmp/before``), so before and after are measured in
the same run on the same batch; the default is this checkout, labelled ``this``. ``--max-n
LABEL=N`` grades with a slow kit only up to N. Prints a table
(wall time, ms per submission, marginal ms per submission beyond start-up, peak memory as RSS
and PSS sums, ratio to ``otter run``), checks that every kit wrote the same gradebook for the same N, and writes the
table (Markdown, next to the plot) and a plot of time and memory against N.

Nothing a run wrote is deleted before the end (the whole scratch folder goes then): on an ext4
without a journal, as on the machine the README's figures come from, creating a file scans past
every inode deleted nearby in the last minutes (the kernel's ``recently_deleted``), so deleting
one run's 20,000 feedback files made the next run's file creation slower, a cost of the
benchmark and not of grading.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.build import Build, ensure_built
from autograder.givens import SEED_ENV
from autograder.pack import registry
from autograder.samples import fill, load_samples

SAMPLE_EVERY = 0.1
"""Seconds between two samples of the process tree's memory."""
CPUACCT = Path("/sys/fs/cgroup/cpuacct")
"""cgroup v1 CPU accounting: where available (root), the CPU time of a whole process tree."""


class TreeCpu:
    """CPU seconds used by a process tree, from a cgroup of its own (None where unavailable).

    Wall time on a shared 2-core machine depends on what else runs; CPU time much less so.
    """

    def __init__(self) -> None:
        self.group = CPUACCT / f"mp-scale-{os.getpid()}-{time.monotonic_ns()}"
        try:
            self.group.mkdir()
        except OSError:
            self.group = None

    def join(self, pid: int | None = None) -> None:
        """Move a process (default: the calling one, as a ``preexec_fn``) into the group."""
        if self.group is not None:
            (self.group / "cgroup.procs").write_text(str(pid or os.getpid()))

    def seconds(self) -> float | None:
        if self.group is None:
            return None
        return int((self.group / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        if self.group is not None:
            for _ in range(50):  # stragglers (a forkserver, Dask workers) take a moment to exit
                try:
                    self.group.rmdir()
                    return
                except OSError:
                    time.sleep(0.2)


@dataclass
class Run:
    """One timed `grade` run."""

    kit: str
    n: int
    seconds: float
    cpu: float | None
    """CPU seconds of the whole process tree (None without cgroup accounting)."""
    peak_mb: float
    """Peak of the sum of RSS over the process tree."""
    peak_main_mb: float
    """Peak RSS of the `grade` process alone."""
    peak_pss_mb: float
    """Peak of the sum of PSS over the process tree (shared pages counted once in all)."""
    gradebook: bytes


def mix(template: nbformat.NotebookNode, pack: str) -> list[str]:
    """The notebooks of the mix, as JSON text: correct, equivalent, mistaken, blank (34 for
    Exercise 2)."""
    samples = load_samples(pack)
    pack = registry.load(pack)
    correct = samples.correct
    notebooks = [fill(template, correct, pack=pack)]
    for question, forms in samples.equivalent.items():
        notebooks += [fill(template, {**correct, question: form}, pack=pack) for form in forms]
    notebooks += [
        fill(template, {**correct, question: source}, pack=pack)
        for question, tag, source in samples.mistakes
        if tag != "timeout"  # a 10 s call limit per case would dominate every figure
    ]
    notebooks.append(template)
    return [nbformat.writes(nb) for nb in notebooks]


def write_batch(folder: Path, notebooks: list[str], n: int) -> Path:
    """N submissions ``s00000.ipynb``... cycling through the mix."""
    folder.mkdir(parents=True, exist_ok=True)
    encoded = [text.encode() for text in notebooks]
    for i in range(n):
        (folder / f"s{i:05d}.ipynb").write_bytes(encoded[i % len(encoded)])
    return folder


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants (plus ``extra`` trees)."""

    def __init__(self, pid: int, extra: list[int] = ()) -> None:
        self.roots = [pid, *extra]
        self.main = pid
        self.peak = 0
        self.peak_main = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeMemory:  # noqa: PYI034 - a final class of this script
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        total = pss = 0
        for root in self.roots:
            try:
                process = psutil.Process(root)
                tree = [process, *process.children(recursive=True)]
            except psutil.Error:
                continue
            for member in tree:
                try:
                    info = member.memory_full_info()  # smaps: PSS too
                except psutil.Error:
                    continue
                rss = info.rss
                total += rss
                pss += info.pss
                if member.pid == self.main:
                    self.peak_main = max(self.peak_main, rss)
        self.peak = max(self.peak, total)
        self.peak_pss = max(self.peak_pss, pss)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.sample()


def grade(
    kit: Path,
    subs: Path,
    out: Path,
    *,
    jobs: int,
    build_dir: Path,
    scheduler: str | None = None,
    watch: list[int] = (),
) -> tuple[float, float | None, float, float, float]:
    """Run the kit's CLI on a batch; wall seconds, CPU seconds, peak tree MB (RSS sum), peak
    main MB, peak tree MB (PSS sum)."""
    command = [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out)]
    command += ["--jobs", str(jobs), "--build-dir", str(build_dir)]
    if scheduler:
        command += ["--scheduler", scheduler]
    cpu = TreeCpu()
    for pid in watch:
        cpu.join(pid)
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=kit,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=cpu.join,  # noqa: PLW1509 - joins a cgroup before exec, no locks taken
        )
        with TreeMemory(proc.pid, list(watch)) as memory:
            _, stderr = proc.communicate()
        seconds = time.perf_counter() - start
        used = cpu.seconds()
    finally:
        cpu.close()
    if proc.returncode != 0:
        raise SystemExit(f"grade failed ({kit}):\n{stderr[-3000:]}")
    mb = 2**20
    return seconds, used, memory.peak / mb, memory.peak_main / mb, memory.peak_pss / mb


def otter_run(paths: list[Path], built: Build, scratch: Path) -> float:
    """Seconds per submission of plain sequential `python -m otter run`."""
    env = {**os.environ, "PYTHONPATH": str(built.autograder_zip.parent)}
    start = time.perf_counter()
    for path in paths:
        work = scratch / path.stem
        work.mkdir(parents=True, exist_ok=True)
        notebook = work / built.student_notebook.name
        shutil.copy(path, notebook)
        command = [sys.executable, "-m", "otter", "run", "-a", str(built.autograder_zip)]
        command += ["-o", str(work), str(notebook)]
        # cwd: `python -m` puts the working folder first on sys.path; run from the repository, the
        # kit's own `autograder` would shadow the zip's shipped copy (and its one pack)
        subprocess.run(
            command, check=True, capture_output=True, cwd=work, env={**env, SEED_ENV: path.stem}
        )
    return (time.perf_counter() - start) / len(paths)


class DaskCluster:
    """A LocalCluster with 2 non-daemonic worker processes that can import the kit at ``kit``."""

    def __init__(self, kit: Path, workers: int = 2) -> None:
        self.kit = kit
        self.workers = workers

    def __enter__(self) -> DaskCluster:  # noqa: PYI034 - a final class of this script
        os.environ["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(self.kit), os.environ.get("PYTHONPATH")])
        )
        from distributed import LocalCluster

        self.cluster = LocalCluster(
            n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        self.address = self.cluster.scheduler_address
        self.pids = [w.process.process.pid for w in self.cluster.workers.values()]
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.close()


def markdown_table(
    runs: list[Run], startup: dict[str, tuple[float, float | None]], otter: float | None
) -> str:
    """The results as a Markdown table."""
    lines = [
        (
            "| kit | N | wall time | ms / submission | marginal ms / submission "
            "| CPU ms / submission | peak memory (process tree, RSS sum) | PSS sum "
            "| ratio to `otter run` |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kit, (seconds, cpu) in startup.items():
        lines.append(f"| {kit} | 1 (start-up) | {seconds:.2f} s | | | {_ms(cpu, 1)} | | | |")
    for run in runs:
        per = 1000 * run.seconds / run.n
        base = startup.get(run.kit.split(" ")[0], (None, None))[0]
        marginal = (
            f"{1000 * (run.seconds - base) / max(run.n - 1, 1):.1f}" if base is not None else ""
        )
        ratio = f"{1000 * otter / per:.0f}×" if otter else ""
        lines.append(
            f"| {run.kit} | {run.n:,} | {run.seconds:.1f} s | {per:.1f} | {marginal} "
            f"| {_ms(run.cpu, run.n)} | {run.peak_mb:.0f} MB | {run.peak_pss_mb:.0f} MB | {ratio} |"
        )
    if otter:
        lines.append(f"| `otter run`, sequential | 5 | | {1000 * otter:.0f} | | | | | 1× |")
    return "\n".join(lines)


def plot(runs: list[Run], path: Path) -> None:
    """Wall time per submission and peak memory against N, one line per kit."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for kit in dict.fromkeys(r.kit for r in runs):
        mine = sorted((r for r in runs if r.kit == kit), key=lambda r: r.n)
        ns = [r.n for r in mine]
        left.plot(ns, [1000 * r.seconds / r.n for r in mine], marker="o", label=kit)
        right.plot(ns, [r.peak_mb for r in mine], marker="o", label=kit)
    for ax, label in ((left, "ms per submission (wall / N)"), (right, "peak memory (MB, RSS sum)")):
        ax.set_xscale("log")
        ax.set_xlabel("submissions N")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(color="#dddddd", linewidth=0.8)
        ax.legend(frameon=False)
    left.set_title("Time per submission, `grade --jobs 2`")
    right.set_title("Peak memory of the process tree")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000], help="batch sizes")
    parser.add_argument("--jobs", type=int, default=2, help="grade --jobs")
    parser.add_argument("--otter", type=int, default=5, help="notebooks for `otter run` (0: skip)")
    parser.add_argument("--startup-repeats", type=int, default=5, help="runs of grade on one")
    parser.add_argument(
        "--kit",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a checkout of the kit to grade with (repeatable; default: this=this checkout)",
    )
    parser.add_argument(
        "--max-n",
        action="append",
        default=[],
        metavar="LABEL=N",
        help="grade with kit LABEL only up to N submissions (a slow baseline; repeatable)",
    )
    parser.add_argument(
        "--dask", action="store_true", help="also the largest N on Dask (2 workers)"
    )
    parser.add_argument(
        "--dask-n", type=int, default=None, help="the N graded on Dask [default: the largest]"
    )
    parser.add_argument("--plot", type=Path, default=None, help="write the plot here (PNG/SVG)")
    parser.add_argument("--table", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--assignment", default="math_primer", help="the pack whose samples to use")
    args = parser.parse_args()
    kits = {}
    for spec in args.kit or [f"this={REPO}"]:
        label, _, path = spec.partition("=")
        kits[label] = Path(path).resolve()

    limits = {label: int(n) for label, _, n in (m.partition("=") for m in args.max_n)}
    dask_n = args.dask_n or max(args.n)
    scratch = Path(tempfile.mkdtemp(prefix="mp-scale-", dir=args.work))
    try:
        built = ensure_built(out=REPO / "dist", pack=args.assignment)
        template = nbformat.read(str(built.student_notebook), as_version=4)
        notebooks = mix(template, args.assignment)
        print(f"mix of {len(notebooks)} notebooks; kits: {', '.join(kits)}", flush=True)

        otter = None
        if args.otter:
            subs = write_batch(scratch / "otter-subs", notebooks, args.otter)
            otter = otter_run(sorted(subs.glob("*.ipynb")), built, scratch / "otter-out")
            print(f"otter run, sequential: {otter:.2f} s per submission", flush=True)

        one = write_batch(scratch / "subs-1", notebooks, 1)
        starts: dict[str, list[tuple[float, float | None]]] = {}
        for _ in range(args.startup_repeats):  # interleaved, so load affects every kit alike
            for label, kit in kits.items():
                out = scratch / f"out-1-{label}"
                shutil.rmtree(out, ignore_errors=True)
                seconds, cpu, *_ = grade(kit, one, out, jobs=args.jobs, build_dir=REPO / "dist")
                starts.setdefault(label, []).append((seconds, cpu))
        startup = {label: _median(values) for label, values in starts.items()}
        for label, (seconds, cpu) in startup.items():
            print(f"start-up ({label}): {seconds:.2f} s, CPU {_s(cpu)} (medians)", flush=True)

        runs: list[Run] = []
        for n in args.n:
            subs = write_batch(scratch / f"subs-{n}", notebooks, n)
            for label, kit in kits.items():
                if n > limits.get(label, n):
                    continue
                out = scratch / f"out-{n}-{label}"
                seconds, cpu, peak, main_peak, pss = grade(
                    kit, subs, out, jobs=args.jobs, build_dir=REPO / "dist"
                )
                runs.append(Run(label, n, seconds, cpu, peak, main_peak, pss, _book(out)))
                print(
                    f"N={n:>6,} {label:>10}: {seconds:7.1f} s, {1000 * seconds / n:6.1f} ms/sub, "
                    f"CPU {_ms(cpu, n)} ms/sub, peak {peak:5.0f} MB (grade process "
                    f"{main_peak:.0f} MB)",
                    flush=True,
                )
            if args.dask and n == dask_n:
                label, kit = list(kits.items())[-1]
                with DaskCluster(kit) as cluster:
                    out = scratch / f"out-{n}-dask"
                    seconds, cpu, peak, main_peak, pss = grade(
                        kit,
                        subs,
                        out,
                        jobs=args.jobs,
                        build_dir=REPO / "dist",
                        scheduler=cluster.address,
                        watch=cluster.pids,
                    )
                runs.append(Run(f"{label} dask", n, seconds, cpu, peak, main_peak, pss, _book(out)))
                print(
                    f"N={n:>6,} {label} on Dask (2 workers): {seconds:7.1f} s, "
                    f"{1000 * seconds / n:6.1f} ms/sub, CPU {_ms(cpu, n)} ms/sub, "
                    f"{n / seconds / 2:.1f} submissions/s per worker, peak {peak:5.0f} MB "
                    "(incl. the 2 workers)",
                    flush=True,
                )

        print()
        table = markdown_table(runs, startup, otter)
        print(table)
        for n in args.n:
            books = {r.kit: r.gradebook for r in runs if r.n == n}
            if len(books) < 2:
                continue
            same = len(set(books.values())) == 1
            print(f"N={n:,}: gradebooks identical across {', '.join(books)}: {same}")
        if args.table:
            args.table.parent.mkdir(parents=True, exist_ok=True)
            args.table.write_text(table + "\n", encoding="utf-8")
        if args.plot:
            plot(runs, args.plot)
            print(f"plot: {args.plot}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _book(out: Path) -> bytes:
    return (out / "gradebook.csv").read_bytes()


def _median(values: list[tuple[float, float | None]]) -> tuple[float, float | None]:
    cpus = [cpu for _, cpu in values if cpu is not None]
    return (
        statistics.median(seconds for seconds, _ in values),
        statistics.median(cpus) if cpus else None,
    )


def _s(cpu: float | None) -> str:
    return "n/a" if cpu is None else f"{cpu:.2f} s"


def _ms(cpu: float | None, n: int) -> str:
    return "n/a" if cpu is None else f"{1000 * cpu / n:.1f}"


if __name__ == "__main__":
    main()
