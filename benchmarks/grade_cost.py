"""What does grading cost per submission? Plain `otter run` vs the kit's engines, side by side.

Usage: python benchmarks/grade_cost.py [--n 40] [--repeats 3] [--skip-plain]

Generates N submissions (correct, one typical mistake, blank), then grades them with:
  - baseline: plain `python -m otter run` on each notebook, one after another;
  - `grade --engine otter` (otter run per notebook, with the judge plugin) with --jobs 2;
  - `grade --engine judge` (the default) with --jobs 1 and --jobs 2.
Prints the median seconds per submission over the repeats (a batch's wall time / N), the ratio
to the baseline, and whether every configuration produced the same scores.
"""

from __future__ import annotations

import argparse
import json
import os
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

from autograder.build import Build, ensure_built
from autograder.givens import SEED_ENV
from autograder.pack import registry
from autograder.samples import fill as fill_pack
from autograder.samples import load_samples

PACK = registry.load("math_primer")  # this benchmark measures Exercise 2
QUESTION_NAMES = PACK.question_ids
_SAMPLES = load_samples(PACK.name)
CORRECT, MISTAKES = _SAMPLES.correct, _SAMPLES.mistakes


def fill(template: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The template with these answers (Exercise 2's pack)."""
    return fill_pack(template, answers, pack=PACK)


def make_batch(folder: Path, template: nbformat.NotebookNode, n: int) -> list[Path]:
    """N notebooks cycling through correct, one-mistake and blank submissions."""
    folder.mkdir(parents=True, exist_ok=True)
    mistakes = [(q, src) for q, _, src in MISTAKES if "while True" not in src]
    paths = []
    for i in range(n):
        if i % 3 == 0:
            nb = fill(template, CORRECT)
        elif i % 3 == 1:
            question, source = mistakes[i % len(mistakes)]
            nb = fill(template, {**CORRECT, question: source})
        else:
            nb = template
        path = folder / f"student{i:03d}.ipynb"
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths


def plain_otter_run(paths: list[Path], built: Build, scratch: Path) -> tuple[float, pd.DataFrame]:
    """Sequential `python -m otter run`; seconds per submission and the scores it reported."""
    env = {**os.environ, "PYTHONPATH": str(built.autograder_zip.parent)}  # the plugin's package
    rows = []
    start = time.perf_counter()
    for path in paths:
        work = scratch / path.stem
        work.mkdir(parents=True, exist_ok=True)
        (work / "math_primer.ipynb").write_bytes(path.read_bytes())
        subprocess.run(
            [
                sys.executable,
                "-m",
                "otter",
                "run",
                "-a",
                str(built.autograder_zip),
                "-o",
                str(work),
                str(work / "math_primer.ipynb"),
            ],
            check=True,
            capture_output=True,
            env={**env, SEED_ENV: path.stem},
        )
        tests = json.loads((work / "results.json").read_text())["tests"]
        rows.append(
            {
                "student": path.stem,
                **{t["name"]: t["score"] for t in tests if t["name"] in QUESTION_NAMES},
            }
        )
    return (time.perf_counter() - start) / len(paths), pd.DataFrame(rows)


def kit(
    folder: Path, built: Build, out: Path, engine: str, jobs: int
) -> tuple[float, pd.DataFrame]:
    """The kit's CLI, `python -m autograder grade`, as a TA runs it (start-up included);
    seconds per submission and the gradebook."""
    command = [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        str(folder),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
        "--engine",
        engine,
        "--build-dir",
        str(built.out),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    book = pd.read_csv(out / "gradebook.csv", dtype={"student": str})
    return elapsed / len(book), book[["student", *QUESTION_NAMES]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="submissions per batch")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per configuration")
    parser.add_argument("--skip-plain", action="store_true", help="skip the slow baseline")
    args = parser.parse_args()
    configs = {
        "grade --engine otter --jobs 2": ("otter", 2),
        "grade --engine judge --jobs 1": ("judge", 1),
        "grade --engine judge --jobs 2": ("judge", 2),
    }
    timings: dict[str, list[float]] = {}
    tables: dict[str, pd.DataFrame] = {}
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        root = Path(tmp)
        built = ensure_built(out=root / "dist", pack=PACK.name)
        template = nbformat.read(str(built.student_notebook), as_version=4)
        paths = make_batch(root / "subs", template, args.n)
        for r in range(args.repeats):
            if not args.skip_plain:
                seconds, table = plain_otter_run(paths, built, root / f"plain{r}")
                timings.setdefault("otter run (sequential)", []).append(seconds)
                tables["otter run (sequential)"] = table
            for name, (engine, jobs) in configs.items():
                seconds, table = kit(
                    root / "subs", built, root / f"out{r}-{engine}{jobs}", engine, jobs
                )
                timings.setdefault(name, []).append(seconds)
                tables[name] = table
    baseline_name = next(iter(timings))
    baseline = statistics.median(timings[baseline_name])
    print(
        f"{args.n} submissions, {args.repeats} repeats; median seconds per submission "
        f"(ratio: {baseline_name} / configuration)"
    )
    for name, values in timings.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.3f}" for v in values)
        print(f"  {name:32s} {median:8.3f} s  {baseline / median:7.1f}x   (runs: {runs})")
    reference = tables[baseline_name].set_index("student").sort_index().astype(float)
    agree = all(
        t.set_index("student").sort_index().astype(float).equals(reference) for t in tables.values()
    )
    print(f"scores identical across configurations: {agree}")


if __name__ == "__main__":
    main()
