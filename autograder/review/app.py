"""The review app: Starlette routes over one graded folder, server-rendered with Jinja2.

Pages (GET): ``/`` overview, ``/q/{question}`` by question, ``/s/{student}`` by student,
``/attention`` needs attention, ``/gradebook``, ``/history``, ``/overrides.csv`` (export),
``/report`` and ``/feedback/{student}`` (the kit's own HTML files). Changes (POST, CSRF-checked):
``/mark/{student}/{question}``, ``/q/{question}/bulk``, ``/q/{question}/items``,
``/items/{id}``, ``/flag/{student}/{question}`` (clear a regrade's review flag), ``/overrides``
(import), ``/whoami``. Each change is one store transaction that
also re-collates the outputs (see :mod:`.outputs`), then redirects back (post/redirect/get).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import jinja2
import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, FormData, UploadFile
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from autograder.gradebook import GradebookError
from autograder.results import file_stem
from autograder.safecsv import read_csv, write_csv

from .actions import (
    MAX_UPLOAD,
    Op,
    as_int,
    bulk_op,
    clear_flag_op,
    edit_item_op,
    import_op,
    mark_op,
    new_item_op,
)
from .context import ReviewContext
from .render import code_css
from .security import CSRF_FIELD, DOCUMENT_CSP, GuardMiddleware
from .store import ConflictError, ReviewError
from .views import GradebookRow, anchor, card, group_key, question_groups, reason, tag_counts, tags

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
USER_COOKIE = "review_user"
ATTENTION = ("invalid", "timeout", "error")
MAX_FORM_FIELDS = 100_000


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
            attention=len(attention) + len(state.flags),
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
        chosen = [r for r in results if tag is None or tag in tags(r, spec.id)]
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
            flags=[f for (s, _), f in state.flags.items() if s == student],
            source=views[student].source if student in views else "",
            previous=students[position - 1] if position > 0 else None,
            following=students[position + 1] if position + 1 < len(students) else None,
            autograded_total=sum(c.layered.autograded for c in cards),
            final_total=sum(c.layered.final for c in cards),
            possible=sum(spec.possible for spec in ctx.specs),
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
        book = read_csv(ctx.out / "gradebook.csv", dtype=str, keep_default_na=False)
        missing = sorted(book.loc[book["status"] == "missing", "student"])
        flags = list(ctx.store.read().flags.values())
        return page(request, "attention.html", rows=rows, missing=missing, flags=flags)

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
        with tempfile.TemporaryDirectory() as tmp:  # the kit's one formula-safe CSV writer
            text = write_csv(frame, Path(tmp) / "overrides.csv").read_text(encoding="utf-8")
        return Response(
            text,
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
        return document(ctx.out / "feedback" / f"{file_stem(student)}.html")

    def stylesheet(request: Request) -> Response:
        return Response(css, media_type="text/css")

    # --- changes ---------------------------------------------------------------------------

    async def form_of(request: Request):
        form = await request.form(max_fields=MAX_FORM_FIELDS)
        if not ctx.guard.csrf_ok(form.get(CSRF_FIELD)):
            raise PermissionError
        return form

    async def change(
        request: Request, build: Callable[[FormData], Op], *, anchor_of: str | None = None
    ) -> Response:
        """Check the CSRF field, build the operation, run it, redirect back (or explain)."""
        try:
            form = await form_of(request)
        except PermissionError:
            return HTMLResponse("missing or wrong CSRF token: reload the page", 403)
        target = _safe_next(form.get("next"))
        try:
            message = await run_in_threadpool(ctx.write, _who(request, ctx), build(form))
        except (ReviewError, GradebookError, ValueError) as error:
            return fail(request, error)
        url = URL(target).include_query_params(done=message)
        fragment = f"#{anchor(anchor_of)}" if anchor_of else ""
        return RedirectResponse(str(url) + fragment, status_code=303)

    async def mark(request: Request) -> Response:
        student, qid = request.path_params["student"], request.path_params["qid"]

        def build(form: FormData) -> Op:
            ctx.question(qid)
            return mark_op(form, student=student, question=qid)

        return await change(request, build, anchor_of=student)

    async def bulk(request: Request) -> Response:
        qid = request.path_params["qid"]

        def build(form: FormData) -> Op:
            spec = ctx.question(qid)
            students = [str(s) for s in form.getlist("student")]
            if form.get("group"):  # the group's members as the page showed them
                tag = form.get("tag") or None
                students = [
                    r["student"]
                    for r in ctx.autograded()
                    if group_key(r, spec) == form.get("group")
                    and (tag is None or tag in tags(r, qid))
                ]
            return bulk_op(form, question=qid, students=students)

        return await change(request, build)

    async def new_item(request: Request) -> Response:
        qid = request.path_params["qid"]

        def build(form: FormData) -> Op:
            ctx.question(qid)
            return new_item_op(form, question=qid)

        return await change(request, build)

    async def edit_item(request: Request) -> Response:
        item = as_int(request.path_params["item"])
        return await change(request, lambda form: edit_item_op(form, item=item))

    async def clear_flag(request: Request) -> Response:
        student, qid = request.path_params["student"], request.path_params["qid"]
        return await change(request, lambda form: clear_flag_op(student=student, question=qid))

    async def import_overrides(request: Request) -> Response:
        def build(form: FormData) -> Op:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ReviewError("choose an overrides CSV to import")
            name = Path(upload.filename or "overrides.csv").name
            data = upload.file.read(MAX_UPLOAD + 1)
            students = (r["student"] for r in ctx.autograded())
            return import_op(data, name=name, students=students, pack=ctx.pack)

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
        Route("/flag/{student}/{qid}", clear_flag, methods=["POST"]),
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


def _pts(value: float | None) -> str:
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
