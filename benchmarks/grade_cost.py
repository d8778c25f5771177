"""What does grading cost per submission? Plain sequential `otter run` vs the kit's `grade`.

Usage: python benchmarks/grade_cost.py [--n 8] [--repeats 3]

Generates N submissions (correct, typical mistakes, blank), then times, side by side:
  - baseline: `python -m otter run` on each notebook, one after another;
  - the kit's `grade` with --jobs 1 and --jobs 2.
Prints the median seconds per submission over the repeats and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.build import ensure_built
from autograder.grading import grade
from autograder.samples import CORRECT, MISTAKES, fill


def make_batch(folder: Path, template: nbformat.NotebookNode, n: int) -> list[Path]:
    """N notebooks cycling through correct, one-mistake and blank submissions."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            nb = fill(template, CORRECT)
        elif kind == 1:
            question, _, source = MISTAKES[i % len(MISTAKES)]
            if "while True" in source:
                source = CORRECT[question]
            nb = fill(template, {**CORRECT, question: source})
        else:
            nb = template
        path = folder / f"student{i:03d}.ipynb"
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths


def time_otter_run(paths: list[Path], autograder_zip: Path, scratch: Path) -> float:
    """Seconds per submission for sequential plain `otter run` (each under the master's name)."""
    start = time.perf_counter()
    for path in paths:
        work = scratch / path.stem
        work.mkdir(parents=True, exist_ok=True)
        target = work / "math_primer.ipynb"
        target.write_bytes(path.read_bytes())
        subprocess.run(
            [
                sys.executable,
                "-m",
                "otter",
                "run",
                "-a",
                str(autograder_zip),
                "-o",
                str(work),
                str(target),
            ],
            check=True,
            capture_output=True,
        )
    return (time.perf_counter() - start) / len(paths)


def time_kit(folder: Path, build_dir: Path, out: Path, jobs: int, n: int) -> float:
    """Seconds per submission for the kit's `grade` with ``jobs`` in parallel."""
    start = time.perf_counter()
    grade(submissions=folder, out=out, build_dir=build_dir, jobs=jobs)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="submissions per batch")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per configuration")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        root = Path(tmp)
        built = ensure_built(out=root / "dist")
        template = nbformat.read(str(built.student_notebook), as_version=4)
        paths = make_batch(root / "subs", template, args.n)
        timings: dict[str, list[float]] = {
            "otter run (sequential)": [],
            "grade --jobs 1": [],
            "grade --jobs 2": [],
        }
        for r in range(args.repeats):
            timings["otter run (sequential)"].append(
                time_otter_run(paths, built.autograder_zip, root / f"plain{r}")
            )
            for jobs in (1, 2):
                timings[f"grade --jobs {jobs}"].append(
                    time_kit(root / "subs", built.out, root / f"out{r}-{jobs}", jobs, args.n)
                )
    baseline = statistics.median(timings["otter run (sequential)"])
    print(f"{args.n} submissions, {args.repeats} repeats; median seconds per submission:")
    for name, values in timings.items():
        median = statistics.median(values)
        print(
            f"  {name:24s} {median:6.2f} s   ratio to otter run: {baseline / median:5.2f}x   "
            f"(runs: {', '.join(f'{v:.2f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
