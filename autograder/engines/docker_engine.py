"""The Docker engine: a batch graded by the real ``otter grade``, in containers without network.

    submissions -> one zip per student: the notebook as ``<pack>.ipynb`` plus the student id
    -> ``python -m otter grade --ext zip --image math-primer/grading:latest --containers N
       --no-network --timeout T --summaries`` with the build's offline autograder zip
    -> Otter's ``final_grades.csv`` (scores, status) and ``grading-summaries/<zip>.txt`` (the
       message of every test case) -> one result dict per submission (``results.py``)

File names: Otter grades the notebook it finds in the submission folder of the container; each
student's zip holds it under the master's name, and the zip's own name (``0001-ann.zip``) is the
key back to the student in Otter's outputs. Seeds: ``otter grade`` passes no environment into its
containers, so the zip also carries the student id (``OFFLINE_STUDENT_FILE``), which the offline
zip's ``run_autograder`` exports as ``MATH_PRIMER_STUDENT``: the instances are the same as under
the other engines.

Nothing from a container is unpickled here: Otter's ``otter grade`` itself loads each container's
``results.pkl`` (with dill, in its own process); this module reads only its CSV and text outputs.
The scores are Otter's (``final_grades.csv``, i.e. the judge plugin's); the per-case messages and
tags come from the summaries.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..advice import advice_notes
from ..build import OFFLINE_STUDENT_FILE, REPO_DIR
from ..errors import KitError
from ..intake import Submission
from ..pack import registry
from ..pack.master import case_of_test
from ..pack.spec import Pack
from ..results import CaseOutcome, Result, empty_result, graded_result
from . import kill_group, wait_stoppable
from .otter_engine import notebook_name, parse_case_message, prepare_notebook

if TYPE_CHECKING:
    import nbformat

log = logging.getLogger(__name__)

GRADING_IMAGE = "math-primer/grading:latest"
"""The base image ``otter grade`` builds on (``scripts/docker_image.sh``)."""
REQUIREMENTS_LABEL = "org.math-primer.requirements-sha256"
"""The image label holding the sha256 of the ``requirements.txt`` it was built from."""
FIX = "run scripts/docker_image.sh"
BUILD_ALLOWANCE = 600.0
"""Seconds allowed for ``otter grade`` to build its image, on top of the grading time."""


class DockerUnavailable(KitError):
    """Docker, buildx or the grading image is missing; the message says how to fix it."""


def docker_problem(image: str = GRADING_IMAGE) -> str | None:
    """Why ``otter grade`` cannot run here (``None`` when it can), each with the fix."""
    if shutil.which("docker") is None:
        return f"Docker is not available (no `docker` command): {FIX} as root"
    info = _docker("info", "--format", "{{.ServerVersion}}")
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"Docker is not available (the daemon does not answer: {reason}): {FIX}"
    if _docker("buildx", "version").returncode != 0:
        return f"Docker is not available (no `docker buildx`, which Otter builds with): {FIX}"
    label = _docker(
        "image",
        "inspect",
        "--format",
        f'{{{{ index .Config.Labels "{REQUIREMENTS_LABEL}" }}}}',
        image,
    )
    if label.returncode != 0:
        return f"Docker is not available (no grading image {image}): {FIX}"
    wanted = hashlib.sha256((REPO_DIR / "requirements.txt").read_bytes()).hexdigest()
    if label.stdout.strip() != wanted:
        return f"the grading image {image} was built for another requirements.txt: {FIX}"
    return None


def _docker(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(["docker", *args], 1, "", f"timed out after {timeout} s")


@dataclass(frozen=True)
class DockerGrader:
    """Grades a batch with one ``otter grade`` run; see :meth:`grade_batch`."""

    autograder_zip: Path
    """The offline autograder zip (``Build.offline_zip``)."""
    timeout: float
    """Seconds one container may run (``otter grade --timeout``)."""
    pack: str | Path | Pack
    """The assignment pack the zip was built for (its name, folder or the pack)."""
    image: str = GRADING_IMAGE
    """The base image of Otter's grading image."""

    def __call__(self, submission: Submission) -> Result:
        """Grade one submission (a batch of one)."""
        return self.grade_batch([submission], jobs=1)[0]

    def grade_batch(
        self,
        submissions: Sequence[Submission],
        *,
        jobs: int,
        on_done: Callable[[Result], None] = lambda result: None,
    ) -> list[Result]:
        """Grade every submission with ``otter grade --containers jobs``; one result each.

        Unusable submissions become ``invalid`` rows without reaching Otter; a container that
        times out a ``timeout`` row; a container that fails, or a submission Otter does not
        report, an ``error`` row with Otter's reason.
        """
        results: dict[str, Result] = {}
        pack = registry.load(self.pack)

        def record(result: Result) -> None:
            results[result["student"]] = result
            on_done(result)

        gradable = []
        for submission in submissions:
            if submission.notebook is None:
                record(
                    empty_result(
                        submission.student,
                        "invalid",
                        f"submission unusable: {submission.problem}",
                        pack=pack,
                    )
                )
            else:
                gradable.append(submission)
        if gradable:
            with tempfile.TemporaryDirectory(prefix="mp-docker-") as scratch:
                folder = Path(scratch)
                staged = stage(gradable, folder / "submissions", pack=pack)
                failure = self._run(folder, containers=max(1, jobs), batch=len(staged))
                for result in collate(staged, folder / "otter-out", failure=failure, pack=pack):
                    record(result)
        return [results[s.student] for s in submissions]

    def _run(self, folder: Path, *, containers: int, batch: int) -> str | None:
        """Run ``otter grade`` on ``folder/submissions``; the reason it failed, or None."""
        out = folder / "otter-out"
        out.mkdir()
        name = f"{registry.load(self.pack).name}-{uuid.uuid4().hex[:12]}"
        per_container = math.ceil(self.timeout)
        command = [
            sys.executable, "-m", "otter", "grade", "-v",
            "--name", name,
            "--autograder", str(self.autograder_zip),
            "--output-dir", str(out),
            "--ext", "zip",
            "--image", self.image,
            "--containers", str(containers),
            "--timeout", str(per_container),
            "--no-network",
            "--summaries",
            str(folder / "submissions"),
        ]  # fmt: skip
        limit = BUILD_ALLOWANCE + math.ceil(batch / containers) * (per_container + 60)
        log.info("running %s", " ".join(command))
        proc = subprocess.Popen(
            command,
            cwd=folder,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        lines: list[str] = []
        reader = threading.Thread(target=_follow, args=(proc, lines), daemon=True)
        reader.start()
        try:
            wait_stoppable(proc, timeout=limit)
        except subprocess.TimeoutExpired:
            log.warning("otter grade did not finish within %g s: stopping it", limit)
            return f"otter grade did not finish within {limit:g} s"
        finally:
            kill_group(proc)
            reader.join(timeout=10)
            _remove_containers(f"otter-grade:{name}")
        if proc.returncode != 0 or not (out / "final_grades.csv").is_file():
            tail = "\n".join(lines[-8:])
            log.warning("otter grade failed (exit %s):\n%s", proc.returncode, tail)
            return f"otter grade failed (exit {proc.returncode}): {tail}"
        return None


def _follow(proc: subprocess.Popen, lines: list[str]) -> None:
    """Keep Otter's output (for error messages) and log its progress."""
    for line in proc.stdout or ():  # a pipe: Popen(stdout=PIPE)
        lines.append(line.rstrip())
        if " complete: " in line or "timed out" in line or "rror" in line:
            log.info("otter grade: %s", line.strip())


def _remove_containers(image: str) -> None:
    """Remove what is left of this run: its containers (e.g. after a kill) and its image tag."""
    found = _docker("ps", "-aq", "--filter", f"ancestor={image}")
    ids = found.stdout.split()
    if ids:
        log.info("removing %d container(s) left by otter grade", len(ids))
        _docker("rm", "-f", *ids, timeout=120)
    _docker("image", "rm", image)  # only the tag: the layers stay cached for the next run


def _notebook(submission: Submission) -> nbformat.NotebookNode:
    """The notebook of a usable submission (only those are staged)."""
    if submission.notebook is None:
        raise ValueError(f"{submission.student}: an unusable submission is never staged")
    return submission.notebook


def stage(submissions: Sequence[Submission], folder: Path, *, pack: Pack) -> dict[str, Submission]:
    """Write one zip per submission for ``otter grade --ext zip``; Otter's file name -> it.

    Each zip holds the notebook as ``<pack>.ipynb`` (kernel set to Python 3) and the student
    id in ``OFFLINE_STUDENT_FILE``; its name is unique and safe (``0001-ann.zip``).
    """
    folder.mkdir(parents=True)
    staged = {}
    with tempfile.TemporaryDirectory(prefix="mp-nb-") as scratch:
        for i, submission in enumerate(submissions, start=1):
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", submission.student)[:80]
            name = f"{i:04d}-{safe}.zip"
            notebook = prepare_notebook(
                _notebook(submission), Path(scratch), name=notebook_name(pack)
            )
            with zipfile.ZipFile(folder / name, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.write(notebook, notebook_name(pack))
                zf.writestr(OFFLINE_STUDENT_FILE, submission.student)
            staged[name] = submission
    return staged


_QUESTION = re.compile(r"^(?P<question>\S+) results:(?P<all> All test cases passed!)?$")
_CASE = re.compile(r"^ {4}(?P<case>\S.*) result:$")


def parse_summary(text: str) -> dict[str, list[tuple[str, bool, str]] | None]:
    """Per question, each test case's (name, passed, message) from an Otter grading summary.

    The format is ``GradingResults.summary()``: ``q1 results:`` (or ``q1 results: All test
    cases passed!``, then None: no per-case list), each case as ``    q1 - 2 result:``
    followed by its message indented by 8 spaces. Messages cannot fake a header: Otter indents
    every line.
    """
    questions: dict[str, list[tuple[str, list[str]]] | None] = {}
    cases: list[tuple[str, list[str]]] | None = None
    for line in text.splitlines():
        if match := _QUESTION.match(line):
            cases = None if match["all"] else []
            questions[match["question"]] = cases
        elif cases is not None and (case := _CASE.match(line)):
            cases.append((case["case"].strip(), []))
        elif cases and (line.startswith(" " * 8) or not line.strip()):
            cases[-1][1].append(line[8:])
    return {
        question: None
        if cases is None
        else [(name, _passed(msg := "\n".join(c).strip()), msg) for name, c in cases]
        for question, cases in questions.items()
    }


def _passed(message: str) -> bool:
    return message.startswith("✅")


def result_from_otter(
    student: str, row: dict, summary: str | None, advice: dict[str, str], *, pack: Pack
) -> Result:
    """The result of a graded submission: Otter's scores, the summary's per-case messages.

    Cases are matched by their test's name (``test_<question>_<case>``), never by position. The
    scores are ``final_grades.csv``'s; where the summary's cases disagree with them (or the
    summary is missing), the question keeps Otter's score and the result says so in ``notes``.
    """
    parsed = parse_summary(summary) if summary is not None else {}
    outcomes: dict[str, list[CaseOutcome]] = {}
    for spec in pack.questions:
        question = spec.id
        cases = parsed.get(question, [])
        if question in parsed and cases is None:  # all passed
            outcomes[question] = [CaseOutcome(c.name, c.points, True) for c in spec.cases]
        elif cases:
            by_case = {
                case_of_test(spec, f"{name}\n{msg}"): (passed, msg) for name, passed, msg in cases
            }
            if all(c.name in by_case for c in spec.cases):
                outcomes[question] = [
                    CaseOutcome(c.name, c.points, by_case[c.name][0], *_tags_text(*by_case[c.name]))
                    for c in spec.cases
                ]
    result = graded_result(student, outcomes, pack=pack, advice=advice)
    notes = []
    for question in pack.question_ids:
        entry = result["questions"][question]
        otter_score = float(row.get(question, 0.0))
        if abs(entry["score"] - otter_score) > 1e-9:
            notes.append(
                f"{question}: Otter's score {otter_score:g} differs from its test messages "
                f"({entry['score']:g}); Otter's score is used"
            )
            entry["score"] = otter_score
    if notes:
        result["notes"] = notes
        result["total"] = round(sum(q["score"] for q in result["questions"].values()), 6)
    return result


def _tags_text(passed: bool, message: str) -> tuple[tuple[str, ...], str]:
    return ((), "") if passed else parse_case_message(message)


def collate(
    staged: dict[str, Submission], out: Path, *, failure: str | None, pack: Pack
) -> list[Result]:
    """One result per staged submission from Otter's outputs in ``out``.

    ``failure`` (``otter grade`` itself failed) makes every submission it did not report an
    ``error`` row with that reason.
    """
    rows = {}
    grades = out / "final_grades.csv"
    if grades.is_file():
        table = pd.read_csv(grades, dtype={"file": str, "grading_status": str})
        rows = {r["file"]: r for r in table.to_dict("records")}
    results = []
    for name, submission in staged.items():
        row = rows.get(name)
        student = submission.student
        if row is None:
            reason = failure or "otter grade reported nothing for this submission"
            results.append(empty_result(student, "error", reason, pack=pack))
            continue
        status = re.sub(r"'[^']*/([^'/]*)'", r"'\1'", str(row.get("grading_status", "")))
        if status == "Completed":
            path = out / "grading-summaries" / f"{Path(name).stem}.txt"
            summary = path.read_text(encoding="utf-8") if path.is_file() else None
            advice = advice_notes(_notebook(submission), pack=pack)
            results.append(result_from_otter(student, row, summary, advice, pack=pack))
            continue
        log.warning("%s: %s", student, status)
        if timed_out := re.search(r"timed out in (\S+) seconds", status):
            feedback = (
                f"grading stopped after {timed_out[1]} s (otter grade's container timeout): "
                "a cell probably runs forever"
            )
            results.append(empty_result(student, "timeout", feedback, pack=pack))
        else:
            results.append(empty_result(student, "error", f"otter grade: {status}", pack=pack))
    return results
