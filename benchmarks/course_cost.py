"""What does `course` cost for a class of a few hundred students?

Usage: python benchmarks/course_cost.py [--n 300] [--repeats 3] [--jobs 2]

For every pack of the course, writes N submissions (the pack's demo samples, cycled under new
student ids: right, typical mistakes, blank, partial, a broken file, a zip), grades them with
`grade --engine judge` (timed once), then times `python -m autograder course` over all the graded
folders REPEATS times (a fresh process each time, so imports count) and prints the median.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.build import ensure_built
from autograder.grading import grade
from autograder.pack import registry
from autograder.samples import write_samples


def make_class(pack: str, folder: Path, n: int, build_dir: Path) -> None:
    """N submissions of ``pack``: its demo samples, cycled under the ids s0000, s0001, ..."""
    built = ensure_built(out=build_dir, pack=pack)
    samples = write_samples(folder / "samples", pack=pack, template_path=built.student_notebook)
    batch = folder / "subs"
    batch.mkdir()
    for i in range(n):
        sample = samples[i % len(samples)]
        shutil.copy(sample, batch / f"s{i:04d}{sample.suffix}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="students per assignment")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the samples' broken files are expected
    packs = registry.names()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        outs = []
        for pack in packs:
            make_class(pack, root / pack, args.n, root / pack / "dist")
            start = time.perf_counter()
            grade(
                submissions=root / pack / "subs",
                out=root / pack / "out",
                build_dir=root / pack / "dist",
                assignment=pack,
                jobs=args.jobs,
            )
            print(f"grade {pack}: {args.n} submissions in {time.perf_counter() - start:.1f} s")
            outs.append(root / pack / "out")
        command = [sys.executable, "-m", "autograder", "course", *map(str, outs)]
        seconds = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            subprocess.run(
                [*command, "--out", str(root / f"course{repeat}")],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            seconds.append(time.perf_counter() - start)
        print(
            f"course over {', '.join(packs)} ({args.n} students): median "
            f"{statistics.median(seconds):.2f} s of {args.repeats} runs "
            f"({', '.join(f'{s:.2f}' for s in seconds)})"
        )


if __name__ == "__main__":
    main()
