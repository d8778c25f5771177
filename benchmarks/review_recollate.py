"""How long does the review app take to save a change, for a class of N students?

Usage: python benchmarks/review_recollate.py [--from OUT] [--n 300 3000] [--repeats 5]

Synthesises a graded folder of N students by copying the real results of a graded folder
(``--from``, default: a fresh ``python -m autograder demo``) under new student ids, records
them in a review store as ``grade`` does, and writes every output. Then, through the app's own
write path (:meth:`ReviewContext.write`: one store transaction that re-collates the outputs
before it commits), it times:

- ``one mark``: set one student's points (results/feedback of 1 student; gradebook and exports
  of all);
- ``group of 10%``: apply a rubric item to a tenth of the class;
- ``item edit``: change the points of an item carried by that tenth (every carrier re-scored);
- ``everything``: rewrite every student's files (as after an import);
- ``report``: the background ``report.html`` render that follows a save.

Prints the median seconds over the repeats.
"""

from __future__ import annotations

import argparse
import copy
import json
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

from autograder.grading import write_outputs
from autograder.pack import Pack
from autograder.report import write_report
from autograder.review.context import ReviewContext
from autograder.review.questions import run_pack
from autograder.review.store import ReviewStore


def synthesise(source: list[dict], n: int, out: Path, *, pack: Pack) -> None:
    """A graded folder of n students made of copies of ``source``."""
    results = []
    for i in range(n):
        result = copy.deepcopy(source[i % len(source)])
        result["student"] = f"s{i:05d}"
        results.append(result)
    store = ReviewStore.of(out)
    possible = {q: float(e["possible"]) for q, e in results[0]["questions"].items()}
    with store.write(who="benchmark", possible=possible) as tx:
        tx.record_run(autograded=results, submissions=None, roster=None, pack=pack)
    write_outputs(results, out, pack=pack)


def timed(action, repeats: int) -> float:
    times = []
    for k in range(repeats):
        start = time.perf_counter()
        action(k)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(source: list[dict], n: int, repeats: int, *, pack: Pack) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        synthesise(source, n, out, pack=pack)
        ctx = ReviewContext(out, token="benchmark", user="benchmark")
        ctx.recollator.report.request = lambda table, results: None  # timed separately below
        students = [f"s{i:05d}" for i in range(n)]
        tenth = students[::10]

        def one(k: int) -> None:
            ctx.write(
                "ta",
                lambda tx: str(
                    tx.set_points(student=students[k], question="q3", points=1.5, version=None)
                ),
            )

        with ctx.store.write(who="ta", possible=ctx.possible) as tx:
            item = tx.add_item(question="q1b", text="explained", points=0.5).id

        def group(k: int) -> None:
            def op(tx):
                for s in tenth:
                    (tx.remove_item if k % 2 else tx.apply_item)(student=s, item_id=item)
                return ""

            ctx.write("ta", op)

        ctx.write("ta", lambda tx: str([tx.apply_item(student=s, item_id=item) for s in tenth]))
        versions = iter(range(1, 10_000))

        def edit(k: int) -> None:
            ctx.write(
                "ta",
                lambda tx: str(
                    tx.edit_item(
                        item,
                        version=next(versions),
                        text="explained",
                        points=0.25 + 0.01 * k,
                        comment="",
                    )
                ),
            )

        def everything(k: int) -> None:
            ctx.write("ta", lambda tx: "", everyone=True)

        state = ctx.store.read()
        results = ctx.recollator.final_results(state)
        import pandas as pd

        table = pd.read_csv(out / "gradebook.csv")

        def report(k: int) -> None:
            write_report(table, results, out, pack=pack)

        return {
            "one mark": timed(one, repeats),
            "group of 10%": timed(group, repeats),
            "item edit": timed(edit, repeats),
            "everything": timed(everything, max(1, repeats // 2)),
            "report": timed(report, max(1, repeats // 2)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, default=None)
    parser.add_argument("--n", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source
        if source is None:
            source = Path(tmp) / "demo"
            subprocess.run(
                [sys.executable, "-m", "autograder", "demo", "--out", str(source)],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
        _, results = ReviewStore.of(source).autograded()
        pack = run_pack(source, ReviewStore.of(source).read().run)
        if not results:
            results = [
                json.loads(p.read_text()) for p in sorted((source / "results").glob("*.json"))
            ]
        print(f"source: {len(results)} real results from {source}")
        for n in args.n:
            figures = measure(results, n, args.repeats, pack=pack)
            print(f"{n:>5} students: " + ", ".join(f"{k} {v:.3f} s" for k, v in figures.items()))
    shutil.rmtree(Path(tmp), ignore_errors=True)


if __name__ == "__main__":
    main()
