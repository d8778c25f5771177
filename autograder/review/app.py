"""The review app: Starlette routes over one graded folder, server-rendered with Jinja2.

Pages (GET): ``/`` overview, ``/q/{question}`` by question, ``/s/{student}`` by student,
``/attention`` needs attention, ``/gradebook``, ``/history``, ``/overrides.csv`` (export),
``/report`` and ``/feedback/{student}`` (the kit's own HTML files). Changes (POST, CSRF-checked):
``/mark/{student}/{question}``, ``/q/{question}/bulk``, ``/q/{question}/items``,
``/items/{id}``, ``/overrides`` (import), ``/whoami``. Each change is one store transaction that
also re-collates the outputs (see :mod:`.outputs`), then redirects back (post/redirect/get).
"""

from __future__ import annotations

import getpass
import logging
import math
import tempfile
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import jinja2
import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, UploadFile
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from autograder.gradebook import GradebookError
from autograder.overrides import check_students, read_overrides

from .notebooks import SubmissionView, load_submissions
from .outputs import Recollator
from .questions import QuestionSpec, question_specs
from .render import code_css
from .security import CSRF_FIELD, DOCUMENT_CSP, Guard, GuardMiddleware
from .store import ConflictError, ReviewError, ReviewStore, Writer
from .views import (
    GradebookRow,
    anchor,
    card,
    question_groups,
    reason,
    tag_counts,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
USER_COOKIE = "review_user"
ATTENTION = ("invalid", "timeout", "error")
MAX_FORM_FIELDS = 100_000


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
        self.specs: tuple[QuestionSpec, ...] = question_specs(self.out, autograded)
        self.by_id = {q.id: q for q in self.specs}
        self.possible = {q.id: q.points for q in self.specs}
        self.recollator = Recollator(self.out, self.store, possible=self.possible)
        self.recollator.prime(run_id, autograded)
        self.guard = Guard(token)
        self.user = user or _os_user()
        self.title = _title(self.out)
        self._submissions: tuple[str | None, dict[str, SubmissionView], str | None] = (
            None,
            {},
            None,
        )
        self._lock = threading.Lock()

    def autograded(self) -> list[dict]:
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
        if qid not in self.by_id:
            raise ReviewError(f"unknown question {qid!r}")
        return self.by_id[qid]

    def write(self, who: str, op: Callable[[Writer], str], *, everyone: bool = False) -> str:
        """Run ``op`` in one transaction and re-collate the outputs before committing."""
        with self.store.write(who=who, possible=self.possible) as tx:
            message = op(tx)
            if tx.changed or everyone:
                saved = self.recollator.save(tx, everyone=everyone)
                message += f"; outputs saved in {saved.seconds:.2f} s"
        return message


def create_app(
    out: Path, *, token: str, user: str | None = None, hosts: tuple[str, ...] = ()
) -> Starlette:
    """The review app over the graded folder ``out``.

    Args:
        out: The graded folder.
        token: The secret the URL carries (see :mod:`.security`).
        user: The default name recorded as "who" (the OS user when ``None``).
        hosts: Extra host names the app answers to (besides 127.0.0.1 and localhost).
    """
    ctx = ReviewContext(out, token=token, user=user)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pts"] = _pts
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.filters["value"] = _value
    env.filters["when"] = lambda at: str(at).replace("T", " ")[:19]
    templates = Jinja2Templates(env=env)
    css = code_css()

    def page(request: Request, template: str, status: int = 200, **values) -> HTMLResponse:
        values.update(
            ctx=ctx,
            csrf=ctx.guard.csrf,
            csrf_field=CSRF_FIELD,
            who=_who(request, ctx),
            here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            done=request.query_params.get("done", ""),
        )
        return templates.TemplateResponse(request, template, values, status_code=status)

    def fail(request: Request, error: Exception) -> HTMLResponse:
        status = 409 if isinstance(error, ConflictError) else 400
        back = _safe_next(request.query_params.get("next") or request.headers.get("referer"))
        return page(request, "error.html", status, message=str(error), back=back)

    # --- pages -----------------------------------------------------------------------------

    def overview(request: Request) -> HTMLResponse:
        results = ctx.autograded()
        state = ctx.store.read()
        final = {r["student"]: r for r in ctx.recollator.final_results(state)}
        rows = []
        for spec in ctx.specs:
            graded = [r for r in results if r.get("status") == "graded"]
            scores = [
                float(
                    ((final[r["student"]].get("questions") or {}).get(spec.id) or {}).get("score")
                    or 0
                )
                for r in graded
            ]
            rows.append(
                {
                    "spec": spec,
                    "graded": len(graded),
                    "full": sum(s >= spec.points - 1e-9 for s in scores),
                    "mean": (sum(scores) / len(scores)) if scores else math.nan,
                    "tags": tag_counts(results, spec)[:4],
                    "marked": sum(
                        1 for (s, q), m in state.marks.items() if q == spec.id and not m.empty
                    ),
                    "item_count": len(state.items_of(spec.id)),
                }
            )
        attention = [r for r in results if r.get("status") in ATTENTION]
        return page(
            request,
            "overview.html",
            rows=rows,
            students=len(results),
            attention=len(attention),
            run=state.run,
            history=ctx.store.history(limit=8),
            report_pending=ctx.recollator.report.pending,
        )

    def by_question(request: Request) -> HTMLResponse:
        try:
            spec = ctx.question(request.path_params["qid"])
        except ReviewError as error:
            return fail(request, error)
        tag = request.query_params.get("tag") or None
        results = ctx.autograded()
        state = ctx.store.read()
        views, problem = ctx.submissions()
        overrides = {(o.student, o.question): o for o in (state.run.overrides if state.run else ())}
        chosen = [
            r
            for r in results
            if tag is None or tag in ((r.get("questions") or {}).get(spec.id) or {}).get("tags", [])
        ]
        names = ctx.names()
        cards = [
            card(
                r,
                spec,
                state=state,
                submission=views.get(r["student"]),
                notebook_problem=problem,
                run_overrides=overrides,
                name=names.get(r["student"], ""),
            )
            for r in chosen
        ]
        by_student = {r["student"]: r for r in results}
        return page(
            request,
            "question.html",
            spec=spec,
            tag=tag,
            tags=tag_counts(results, spec),
            groups=question_groups(cards, by_student, spec),
            items=state.items_of(spec.id),
            shown=len(cards),
            total=len(results),
        )

    def by_student(request: Request) -> HTMLResponse:
        student = request.path_params["student"]
        results = {r["student"]: r for r in ctx.autograded()}
        if student not in results:
            return fail(request, ReviewError(f"no graded submission from student {student!r}"))
        result = results[student]
        state = ctx.store.read()
        views, problem = ctx.submissions()
        overrides = {(o.student, o.question): o for o in (state.run.overrides if state.run else ())}
        name = ctx.names().get(student, "")
        cards = [
            card(
                result,
                spec,
                state=state,
                submission=views.get(student),
                notebook_problem=problem,
                run_overrides=overrides,
                name=name,
            )
            for spec in ctx.specs
        ]
        students = sorted(results)
        position = students.index(student)
        return page(
            request,
            "student.html",
            student=student,
            name=name,
            result=result,
            reason=reason(result) if result.get("status") != "graded" else "",
            notes=[str(n) for n in result.get("notes") or ()],
            cards=cards,
            items={spec.id: state.items_of(spec.id) for spec in ctx.specs},
            history=ctx.store.history(student=student),
            source=views[student].source if student in views else "",
            previous=students[position - 1] if position > 0 else None,
            following=students[position + 1] if position + 1 < len(students) else None,
            autograded_total=sum(c.layered.autograded for c in cards),
            final_total=sum(c.layered.final for c in cards),
            possible=sum(spec.points for spec in ctx.specs),
        )

    def attention(request: Request) -> HTMLResponse:
        rows = [
            {
                "student": r["student"],
                "status": r.get("status"),
                "reason": reason(r),
                "notes": [str(n) for n in r.get("notes") or ()],
            }
            for r in ctx.autograded()
            if r.get("status") in ATTENTION
        ]
        book = pd.read_csv(ctx.out / "gradebook.csv", dtype=str, keep_default_na=False)
        missing = sorted(book.loc[book["status"] == "missing", "student"])
        return page(request, "attention.html", rows=rows, missing=missing)

    def gradebook(request: Request) -> HTMLResponse:
        state = ctx.store.read()
        autograded = {r["student"]: r for r in ctx.autograded()}
        rows = []
        for result in ctx.recollator.final_results(state):
            auto = autograded[result["student"]]
            cells = []
            for spec in ctx.specs:
                a = float(((auto.get("questions") or {}).get(spec.id) or {}).get("score") or 0)
                entry = (result.get("questions") or {}).get(spec.id) or {}
                cells.append((a, float(entry.get("score") or 0), "override" in entry))
            rows.append(
                GradebookRow(
                    result["student"],
                    str(result.get("status")),
                    tuple(cells),
                    sum(c[0] for c in cells),
                    sum(c[1] for c in cells),
                )
            )
        return page(request, "gradebook.html", rows=rows)

    def history(request: Request) -> HTMLResponse:
        return page(request, "history.html", changes=ctx.store.history(limit=2000))

    def export_overrides(request: Request) -> Response:
        state = ctx.store.read()
        rows = []
        for result in ctx.recollator.final_results(state):
            for spec in ctx.specs:
                entry = (result.get("questions") or {}).get(spec.id) or {}
                override = entry.get("override")
                if isinstance(override, dict):
                    rows.append(
                        {
                            "student": result["student"],
                            "question": spec.id,
                            "points": f"{round(float(override['points']), 4) + 0.0:g}",
                            "comment": override.get("comment") or "",
                        }
                    )
        frame = pd.DataFrame(rows, columns=["student", "question", "points", "comment"])
        return Response(
            frame.to_csv(index=False, lineterminator="\n"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="overrides.csv"'},
        )

    def document(path: Path) -> Response:
        if not path.is_file():
            return HTMLResponse("not written yet", 404)
        return HTMLResponse(
            path.read_text(encoding="utf-8"), headers={"Content-Security-Policy": DOCUMENT_CSP}
        )

    def report(request: Request) -> Response:
        ctx.recollator.flush(timeout=30)
        return document(ctx.out / "report.html")

    def feedback(request: Request) -> Response:
        student = request.path_params["student"]
        if student not in {r["student"] for r in ctx.autograded()}:
            return HTMLResponse("no such student", 404)
        return document(ctx.out / "feedback" / f"{student}.html")

    def stylesheet(request: Request) -> Response:
        return Response(css, media_type="text/css")

    # --- changes ---------------------------------------------------------------------------

    async def form_of(request: Request):
        form = await request.form(max_fields=MAX_FORM_FIELDS)
        if not ctx.guard.csrf_ok(form.get(CSRF_FIELD)):
            raise PermissionError
        return form

    async def change(
        request: Request, build: Callable, *, anchor_of: str | None = None
    ) -> Response:
        try:
            form = await form_of(request)
        except PermissionError:
            return HTMLResponse("missing or wrong CSRF token: reload the page", 403)
        target = _safe_next(form.get("next"))
        try:
            op, everyone = build(form)
            message = await run_in_threadpool(ctx.write, _who(request, ctx), op, everyone=everyone)
        except (ReviewError, GradebookError, ValueError) as error:
            return fail(request, error)
        url = URL(target).include_query_params(done=message)
        fragment = f"#{anchor(anchor_of)}" if anchor_of else ""
        return RedirectResponse(str(url) + fragment, status_code=303)

    async def mark(request: Request) -> Response:
        student, qid = request.path_params["student"], request.path_params["qid"]

        def build(form):
            ctx.question(qid)
            action = form.get("action")
            version = _int(form.get("version")) if action in ("points", "clear", "comment") else 0
            if action == "toggle":
                item = _int(form.get("item"))

                def op(tx: Writer) -> str:
                    if tx.apply_item(student=student, item_id=item):
                        return f"applied item {item} to {student}"
                    tx.remove_item(student=student, item_id=item)
                    return f"removed item {item} from {student}"

            elif action == "points":
                points = _number(form.get("points"))

                def op(tx: Writer) -> str:
                    tx.set_points(student=student, question=qid, points=points, version=version)
                    return f"{student}, {qid}: points set to {points:g}"

            elif action == "clear":

                def op(tx: Writer) -> str:
                    tx.set_points(student=student, question=qid, points=None, version=version)
                    return f"{student}, {qid}: points set by hand cleared"

            elif action == "comment":

                def op(tx: Writer) -> str:
                    tx.set_comment(
                        student=student,
                        question=qid,
                        text=str(form.get("comment") or ""),
                        version=version,
                    )
                    return f"{student}, {qid}: comment saved"

            else:
                raise ReviewError(f"unknown action {action!r}")
            return op, False

        return await change(request, build, anchor_of=student)

    async def bulk(request: Request) -> Response:
        qid = request.path_params["qid"]

        def build(form):
            spec = ctx.question(qid)
            students = [str(s) for s in form.getlist("student")]
            group = form.get("group")
            if group:
                from .views import group_key

                tag = form.get("tag") or None
                students = [
                    r["student"]
                    for r in ctx.autograded()
                    if group_key(r, spec) == group
                    and (
                        tag is None
                        or tag in ((r.get("questions") or {}).get(qid) or {}).get("tags", [])
                    )
                ]
            if not students:
                raise ReviewError("no submission selected: tick some, or use a group's button")
            action = form.get("action")
            versions = {s: form.get(f"version:{s}") for s in students}

            if action in ("apply", "remove") and not form.get("item"):
                raise ReviewError("choose a rubric item (add one to the question first)")

            def op(tx: Writer) -> str:
                if action == "apply":
                    item = _int(form.get("item"))
                    n = sum(tx.apply_item(student=s, item_id=item) for s in students)
                    return f"applied item {item} to {n} of {len(students)} submission(s)"
                if action == "remove":
                    item = _int(form.get("item"))
                    n = sum(tx.remove_item(student=s, item_id=item) for s in students)
                    return f"removed item {item} from {n} submission(s)"
                if action == "points":
                    points = _number(form.get("points"))
                    for s in students:
                        if versions[s] is None:
                            raise ReviewError(f"no version for {s}: reload the page and redo it")
                        tx.set_points(
                            student=s, question=qid, points=points, version=_int(versions[s])
                        )
                    return f"points of {len(students)} submission(s) set to {points:g}"
                if action == "comment":
                    text = str(form.get("comment") or "")
                    for s in students:
                        tx.add_comment(student=s, question=qid, text=text)
                    return f"comment added to {len(students)} submission(s)"
                raise ReviewError(f"unknown bulk action {action!r}")

            return op, False

        return await change(request, build)

    async def new_item(request: Request) -> Response:
        qid = request.path_params["qid"]

        def build(form):
            ctx.question(qid)
            points = _number(form.get("points"))

            def op(tx: Writer) -> str:
                item = tx.add_item(
                    question=qid,
                    text=str(form.get("text") or ""),
                    points=points,
                    comment=str(form.get("comment") or ""),
                )
                return f"rubric item {item.id} created"

            return op, False

        return await change(request, build)

    async def edit_item(request: Request) -> Response:
        item_id = _int(request.path_params["item"])

        def build(form):
            version = _int(form.get("version"))
            if form.get("action") == "delete":

                def op(tx: Writer) -> str:
                    tx.delete_item(item_id, version=version)
                    return (
                        f"rubric item {item_id} deleted; {len(tx.changed)} submission(s) re-scored"
                    )
            else:
                points = _number(form.get("points"))

                def op(tx: Writer) -> str:
                    tx.edit_item(
                        item_id,
                        version=version,
                        text=str(form.get("text") or ""),
                        points=points,
                        comment=str(form.get("comment") or ""),
                    )
                    return f"rubric item {item_id} saved; {len(tx.changed)} submission(s) re-scored"

            return op, False

        return await change(request, build)

    async def import_overrides(request: Request) -> Response:
        def build(form):
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ReviewError("choose an overrides CSV to import")
            data = upload.file.read(10_000_001)
            if len(data) > 10_000_000:
                raise ReviewError("the file is larger than 10 MB")
            name = Path(upload.filename or "overrides.csv").name
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "overrides.csv"
                path.write_bytes(data)
                rows = read_overrides(path)
                check_students(rows, (r["student"] for r in ctx.autograded()), path=Path(name))

            def op(tx: Writer) -> str:
                n = tx.import_overrides(rows, source=name)
                return f"imported {name}: {n} of {len(rows)} row(s) changed a mark"

            return op, False

        return await change(request, build)

    async def whoami(request: Request) -> Response:
        try:
            form = await form_of(request)
        except PermissionError:
            return HTMLResponse("missing or wrong CSRF token: reload the page", 403)
        name = " ".join(str(form.get("name") or "").split())[:60]
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        response.set_cookie(USER_COOKIE, quote(name, safe=""), httponly=True, samesite="strict")
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        ctx.recollator.flush(timeout=60)

    routes = [
        Route("/", overview),
        Route("/q/{qid}", by_question),
        Route("/q/{qid}/bulk", bulk, methods=["POST"]),
        Route("/q/{qid}/items", new_item, methods=["POST"]),
        Route("/items/{item}", edit_item, methods=["POST"]),
        Route("/s/{student}", by_student),
        Route("/mark/{student}/{qid}", mark, methods=["POST"]),
        Route("/attention", attention),
        Route("/gradebook", gradebook),
        Route("/history", history),
        Route("/overrides.csv", export_overrides),
        Route("/overrides", import_overrides, methods=["POST"]),
        Route("/whoami", whoami, methods=["POST"]),
        Route("/report", report),
        Route("/feedback/{student}", feedback),
        Route("/static/code.css", stylesheet),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", *hosts]),
        Middleware(GuardMiddleware, guard=ctx.guard),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.ctx = ctx
    return app


def _who(request: Request, ctx: ReviewContext) -> str:
    from urllib.parse import unquote

    name = unquote(request.cookies.get(USER_COOKIE, ""))
    return " ".join(name.split())[:60] or ctx.user


def _safe_next(value: object) -> str:
    """A local path to go back to (anything else becomes ``/``)."""
    text = str(value or "")
    if text.startswith(("http://", "https://")):
        url = URL(text)
        text = url.path + (f"?{url.query}" if url.query else "")
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise ReviewError(f"expected a whole number, got {value!r}") from None


def _number(value: object) -> float:
    text = str(value or "").strip().replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        raise ReviewError(f"points must be a number, got {text!r}") from None
    if not math.isfinite(number):
        raise ReviewError(f"points must be a finite number, got {text!r}")
    return number


def _pts(value: object) -> str:
    if value is None:
        return "\u2014"
    number = float(value)
    if not math.isfinite(number):
        return "\u2014"
    return f"{round(number, 4) + 0.0:g}"


def _value(value: object) -> str:
    """An audit trail value as text (rubric items as ``text (+0.5): comment``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return _pts(value)
    if isinstance(value, dict):
        if {"text", "points"} <= set(value):
            said = f"{value['text']} ({float(value['points']):+g})"
            return f"{said}: {value['comment']}" if value.get("comment") else said
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
    return str(value)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "ta"


def _title(out: Path) -> str:
    import json

    try:
        record = json.loads((out / "assignment.json").read_text(encoding="utf-8"))
        title = record.get("title") if isinstance(record, dict) else None
        if isinstance(title, str) and title.strip():
            return title
    except (OSError, ValueError):
        pass
    return "Math Primer"
