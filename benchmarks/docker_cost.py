"""What does the docker engine cost per submission, next to the judge engine, on the same batch?

Usage: python benchmarks/docker_cost.py [--n 24] [--repeats 3] [--jobs 2]

Needs Docker and the grading image (scripts/docker_image.sh). Generates N submissions (correct,
one typical mistake, blank; as in grade_cost.py), then grades them through the CLI
(`python -m autograder grade`, start-up included, a fresh output folder each time so nothing
comes from the result cache) with `--engine docker` and `--engine judge`, both with --jobs J.
Prints the median seconds per submission over the repeats (a batch's wall time / N) and whether
both engines produced the same gradebook.
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
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from grade_cost import make_batch

from autograder.build import ensure_built
from autograder.engines.docker_engine import docker_problem


def grade(engine: str, subs: Path, out: Path, build_dir: Path, jobs: int) -> float:
    """Seconds for one `grade` run of the batch."""
    command = [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out)]
    command += ["--engine", engine, "--jobs", str(jobs), "--build-dir", str(build_dir)]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="submissions per batch")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per engine")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs (containers for docker)")
    args = parser.parse_args()
    if problem := docker_problem():
        sys.exit(f"error: {problem}")
    with tempfile.TemporaryDirectory(prefix="mp-docker-cost-") as scratch:
        root = Path(scratch)
        built = ensure_built(out=root / "dist")
        template = nbformat.read(str(built.student_notebook), as_version=4)
        subs = root / "submissions"
        make_batch(subs, template, args.n)
        seconds: dict[str, list[float]] = {"docker": [], "judge": []}
        books = {}
        for i in range(args.repeats):
            for engine, values in seconds.items():
                out = root / f"{engine}-{i}"
                values.append(grade(engine, subs, out, built.out, args.jobs) / args.n)
                books[engine] = pd.read_csv(out / "gradebook.csv")
        print(f"{args.n} submissions, --jobs {args.jobs}, median of {args.repeats} runs")
        for engine, values in seconds.items():
            runs = ", ".join(f"{v:.3f}" for v in values)
            print(f"  --engine {engine:<6}  {statistics.median(values):.3f} s/submission  ({runs})")
        same = books["docker"].equals(books["judge"])
        print(f"  same gradebook: {same}")


if __name__ == "__main__":
    main()
