"""Re-collating a graded folder after a review change, without grading again.

:class:`Recollator` turns the store's autograded snapshot and marks into final results (the
layering of :mod:`.marks`, applied by :func:`autograder.overrides.apply_overrides`) and writes
them with :func:`autograder.grading.write_outputs`, the writer ``grade`` uses:

- inside the change's transaction (so the files never disagree with what was committed):
  ``results/`` and ``feedback/`` of the students the change touched, ``gradebook.csv``,
  ``canvas.csv`` and ``moodle.csv`` (everyone); ``long.csv`` lists each hidden case's outcome,
  which no human mark changes, so it is rewritten only when some graded result lacks its
  per-case list (older results, where the file reads the score);
- ``report.html`` right after, on a background thread (its three matplotlib figures take about
  a second whatever the class size); a burst of changes renders it once, with the latest state.
  :meth:`Recollator.flush` waits for it (the server does so before it exits).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from autograder.overrides import apply_overrides
from autograder.pack import Pack
from autograder.report import write_report

from .marks import overrides_for
from .questions import question_specs
from .store import ReviewState, ReviewStore, Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Saved:
    """What a save wrote and how long it took."""

    seconds: float
    """Time to write results, feedback, gradebook and exports (the report follows)."""
    students: int
    """Students whose results and feedback files were rewritten."""


class Recollator:
    """Writes the outputs of one graded folder from its review store.

    Args:
        out: The graded folder.
        store: Its review store.
        pack: The graded assignment.
    """

    def __init__(self, out: Path, store: ReviewStore, *, pack: Pack) -> None:
        self.out = Path(out)
        self.store = store
        self.pack = pack
        self.possible = {q.id: q.possible for q in question_specs(pack)}
        self._cached: tuple[str | None, list[dict]] = (None, [])
        self._lock = threading.Lock()
        self.report = ReportWriter(self.out, pack=pack)

    def autograded(self, run_id: str | None) -> list[dict]:
        """The run's autograded results (read from the store once per run; never mutated)."""
        with self._lock:
            if run_id is None or self._cached[0] != run_id:
                self._cached = self.store.autograded()
            return self._cached[1]

    def prime(self, run_id: str | None, autograded: list[dict]) -> None:
        """Use results already read from the store for ``run_id``."""
        with self._lock:
            self._cached = (run_id, autograded)

    def final_results(self, state: ReviewState) -> list[dict]:
        """Every result with the human marks layered over it."""
        autograded = self.autograded(state.run.run_id if state.run else None)
        overrides = overrides_for(
            autograded,
            marks=state.marks.values(),
            items=state.items,
            run_overrides=state.run.overrides if state.run else (),
            possible=self.possible,
        )
        touched = {o.student for o in overrides}
        layered = {
            r["student"]: r
            for r in apply_overrides(
                [r for r in autograded if r["student"] in touched], overrides, pack=self.pack
            )
        }
        return [layered.get(r["student"], r) for r in autograded]

    def save(self, tx: Writer, *, everyone: bool = False) -> Saved:
        """Write the outputs as the transaction ``tx`` leaves the store (call it before commit).

        Args:
            tx: The open write transaction; its ``changed`` students get new result files.
            everyone: Rewrite every student's files (e.g. after an import).
        """
        from autograder.grading import write_outputs  # grading imports this package

        start = time.perf_counter()
        state = tx.state()
        results = self.final_results(state)
        roster = state.run.roster() if state.run else None
        only = None if everyone else set(tx.changed)
        table = write_outputs(
            results,
            self.out,
            pack=self.pack,
            roster=roster,
            only=only,
            report=False,
            long=everyone or not cases_everywhere(results),
        )
        seconds = time.perf_counter() - start
        self.report.request(table, results)
        written = len(results) if only is None else len(only)
        log.info("re-collated %s in %.3f s (%d student file(s))", self.out, seconds, written)
        return Saved(seconds, written)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until ``report.html`` shows the latest save; ``False`` on timeout."""
        return self.report.wait(timeout)


def cases_everywhere(results: list[dict]) -> bool:
    """Does every graded answer list its cases? Then ``long.csv`` (one row per case) does not
    depend on human marks, and a save need not rewrite it (see ``exports.long_table``)."""
    return all(
        isinstance(entry, dict) and isinstance(entry.get("cases"), list)
        for result in results
        if result.get("status") == "graded"
        for entry in (result.get("questions") or {}).values()
    )


class ReportWriter:
    """Renders ``report.html`` on a daemon thread, coalescing requests (latest state wins)."""

    def __init__(self, out: Path, *, pack: Pack) -> None:
        self.out = out
        self.pack = pack
        self._condition = threading.Condition()
        self._pending: tuple[pd.DataFrame, list[dict]] | None = None
        self._busy = False
        self.written = 0
        """Reports written so far."""
        self.last_seconds: float | None = None
        """How long the last report took."""
        self._thread = threading.Thread(target=self._run, name="report-writer", daemon=True)
        self._thread.start()

    def request(self, table: pd.DataFrame, results: list[dict]) -> None:
        """Ask for a report of this state (replaces a request not yet started)."""
        with self._condition:
            self._pending = (table, results)
            self._condition.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no report is pending or being written."""
        with self._condition:
            return self._condition.wait_for(
                lambda: self._pending is None and not self._busy, timeout=timeout
            )

    @property
    def pending(self) -> bool:
        """Is a report waiting or being written?"""
        with self._condition:
            return self._pending is not None or self._busy

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending is not None)
                pending = self._pending
                assert pending is not None  # wait_for returned; narrows the type
                table, results = pending
                self._pending, self._busy = None, True
            start = time.perf_counter()
            try:
                write_report(table, results, self.out, pack=self.pack)
                self.written += 1
            except Exception:  # the app goes on; the next save tries again
                log.exception("writing %s/report.html failed", self.out)
            finally:
                self.last_seconds = time.perf_counter() - start
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
