"""Grade one notebook with ``otter run`` and print Otter's per-test-case results as JSON.

Run as ``python otter_worker.py AUTOGRADER_ZIP NOTEBOOK OUT_JSON`` (a script: stdlib and otter) in a
subprocess of its own, so that a hung or crashing kernel costs only this submission.
This is the real Otter code path: ``otter.run.main``, the same code ``otter grade`` runs inside its
containers.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def grading_results_to_dict(results) -> dict:
    """Plain data from an ``otter.test_files.GradingResults``: one entry per test case."""
    questions = {}
    for name, test_file in results.results.items():
        questions[name] = {
            "score": float(test_file.score),
            "possible": float(test_file.possible),
            "cases": [
                {
                    "name": str(r.test_case.name),
                    "points": float(r.test_case.points or 0.0),
                    "hidden": bool(r.test_case.hidden),
                    "passed": bool(r.passed),
                    "message": str(r.message),
                }
                for r in test_file.test_case_results
            ],
        }
    error = results.catastrophic_error
    judge = results.get_plugin_data("JudgePlugin", None)
    return {
        "questions": questions,
        "error": None if error is None else repr(error),
        "judge_plugin": judge,
    }


def main(argv: list[str]) -> int:
    """Entry point: grade, write the JSON, exit 0 (or 2 on a usage error)."""
    if len(argv) != 3:
        print("usage: otter_worker AUTOGRADER_ZIP NOTEBOOK OUT_JSON", file=sys.stderr)
        return 2
    autograder, notebook, out = (Path(a).resolve() for a in argv)
    # the built package copy beside the zip (same files as the zip's files/): the judge plugin
    sys.path.insert(0, str(autograder.parent))
    from otter.run import main as otter_run

    with tempfile.TemporaryDirectory(prefix="otter-run-") as scratch:
        results = otter_run(
            str(notebook), autograder=str(autograder), output_dir=scratch, no_logo=True
        )
    out.write_text(json.dumps(grading_results_to_dict(results)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
