"""One graded folder as the review app sees it: store, questions, results, notebooks."""

from __future__ import annotations

import getpass
import threading
from pathlib import Path

from .actions import Op
from .notebooks import SubmissionView, load_submissions
from .outputs import Recollator
from .questions import QuestionSpec, question_specs, run_pack
from .security import Guard
from .store import ReviewError, ReviewStore


class ReviewContext:
    """Everything the pages need about one graded folder.

    Raises:
        ReviewError: ``out`` is not a graded folder, or was graded before the review store.
    """

    def __init__(self, out: Path, *, token: str, user: str | None = None) -> None:
        self.out = Path(out)
        if not (self.out / "results").is_dir() or not (self.out / "gradebook.csv").is_file():
            raise ReviewError(
                f"{self.out} is not a graded folder (no results/ or gradebook.csv); run "
                f"`python -m autograder grade SUBMISSIONS --out {self.out}` first"
            )
        self.store = ReviewStore.of(self.out)
        run_id, autograded = self.store.autograded()
        if run_id is None:
            raise ReviewError(
                f"{self.out} was graded before the kit kept a review store; grade it again "
                f"(`python -m autograder grade SUBMISSIONS --out {self.out}` reuses the cached "
                "results)"
            )
        self.pack = run_pack(self.out, self.store.read().run)
        self.specs: tuple[QuestionSpec, ...] = question_specs(self.pack, autograded)
        self.by_id = {q.id: q for q in self.specs}
        self.possible = {q.id: q.possible for q in self.specs}
        self.recollator = Recollator(self.out, self.store, pack=self.pack)
        self.recollator.prime(run_id, autograded)
        self.guard = Guard(token)
        self.user = user or _os_user()
        self.title = self.pack.title
        self._submissions: tuple[str | None, dict[str, SubmissionView], str | None] = (
            None,
            {},
            None,
        )
        self._lock = threading.Lock()

    def autograded(self) -> list[dict]:
        """The latest run's autograded results (sorted by student)."""
        return self.recollator.autograded(self.store.run_id())

    def submissions(self) -> tuple[dict[str, SubmissionView], str | None]:
        """The notebooks of the latest run (read once per run)."""
        state = self.store.read()
        run = state.run
        with self._lock:
            if self._submissions[0] != (run.run_id if run else None):
                folder = Path(run.submissions) if run and run.submissions else None
                views, problem = load_submissions(
                    folder, specs=self.specs, roster=run.roster() if run else None
                )
                self._submissions = (run.run_id if run else None, views, problem)
            return self._submissions[1], self._submissions[2]

    def names(self) -> dict[str, str]:
        """Roster names by student (empty without a roster or a ``name`` column)."""
        run = self.store.read().run
        roster = run.roster() if run else None
        if roster is None or "name" not in roster.columns:
            return {}
        return dict(zip(roster["student"], roster["name"], strict=True))

    def question(self, qid: str) -> QuestionSpec:
        """The question ``qid``.

        Raises:
            ReviewError: no such question.
        """
        if qid not in self.by_id:
            raise ReviewError(f"unknown question {qid!r}")
        return self.by_id[qid]

    def write(self, who: str, op: Op, *, everyone: bool = False) -> str:
        """Run ``op`` in one transaction and re-collate the outputs before committing."""
        with self.store.write(who=who, possible=self.possible) as tx:
            message = op(tx)
            if tx.changed or everyone:
                saved = self.recollator.save(tx, everyone=everyone)
                message += f"; outputs saved in {saved.seconds:.2f} s"
        return message


def _os_user() -> str:
    """The name of the user running the app."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "ta"
