"""Tests for the review app's pages and changes (autograder/review/app.py), over HTTP."""

from __future__ import annotations

import hashlib
import html
import io
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from starlette.routing import Route
from starlette.testclient import TestClient

from autograder.cli import main
from autograder.review.app import create_app
from autograder.review.security import CSP, DOCUMENT_CSP
from autograder.review.store import ReviewError, ReviewStore

TOKEN = "test-token"
BASE = "http://127.0.0.1"


@pytest.fixture()
def out(review_demo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(review_demo, tmp_path / "out"))


@pytest.fixture()
def app(out: Path):
    return create_app(out, token=TOKEN, user="tester")


@pytest.fixture()
def client(app):
    """A signed-in browser-like client (the token sets the cookie)."""
    with TestClient(app, base_url=BASE, follow_redirects=True) as client:
        assert client.get(f"/?token={TOKEN}").status_code == 200
        yield client
    app.state.ctx.recollator.flush(timeout=60)


def post(client: TestClient, app, path: str, **data) -> object:
    """A form post as the app's own pages make it (CSRF field, same origin)."""
    data.setdefault("next", "/")
    return client.post(
        path, data={"csrf": app.state.ctx.guard.csrf, **data}, headers={"Origin": BASE}
    )


def book(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "gradebook.csv").set_index("student")


def alert(response) -> str:
    match = re.search(r'role="alert">([^<]*)<', response.text)
    return html.unescape(match[1]) if match else ""


# --- signing in and guards ------------------------------------------------------------------


def test_every_page_needs_the_token(app):
    """Without the token or its cookie, is every page refused (static files aside), a wrong
    token too, and does the right one set a strict HttpOnly cookie and leave the address bar?"""
    with TestClient(app, base_url=BASE, follow_redirects=False) as anonymous:
        for path in (
            "/",
            "/q/q1b",
            "/s/ada_correct",
            "/gradebook",
            "/history",
            "/attention",
            "/overrides.csv",
            "/report",
            "/feedback/ada_correct",
        ):
            assert anonymous.get(path).status_code == 403, path
        assert anonymous.get("/static/review.js").status_code == 200
        assert anonymous.get("/?token=wrong").status_code == 403
        signed = anonymous.get(f"/q/q1b?tag=transposed&token={TOKEN}")
        assert signed.status_code == 303 and signed.headers["location"] == "/q/q1b?tag=transposed"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert TOKEN not in cookie


def test_every_change_needs_the_csrf_field(app, client, out):
    """Is every POST route refused without the CSRF field, changing nothing?"""
    posts = [r.path for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())]
    assert len(posts) == 7
    before = ReviewStore.of(out).history()
    for path in posts:
        path = path.format(qid="q1b", student="ben_mistakes", item="1")
        answer = client.post(
            path,
            data={"action": "points", "points": "1", "version": "0", "text": "x", "name": "eve"},
            headers={"Origin": BASE},
        )
        assert answer.status_code == 403, path
    assert ReviewStore.of(out).history() == before


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Host": "evil.example"}, 400),
    ],
)
def test_cross_site_and_rebinding_requests_are_refused(app, client, headers, status):
    """Even with the CSRF field, is a post from another origin, or to another host name (DNS
    rebinding), refused?"""
    answer = client.post(
        "/q/q1b/items",
        data={"csrf": app.state.ctx.guard.csrf, "text": "x", "points": "0.5"},
        headers=headers,
    )
    assert answer.status_code == status


def test_pages_carry_the_security_headers(client):
    """Do pages carry the CSP and friends, and the kit's HTML files their own strict CSP?"""
    page = client.get("/q/q1b")
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert client.get("/report").headers["content-security-policy"] == DOCUMENT_CSP
    assert client.get("/feedback/ada_correct").headers["content-security-policy"] == DOCUMENT_CSP


def test_next_never_leaves_the_app(app, client):
    """Can a crafted `next` send the TA to another site after a change? (no)"""
    answer = client.post(
        "/whoami",
        data={"csrf": app.state.ctx.guard.csrf, "name": "x", "next": "//evil.example/x"},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


# --- pages -----------------------------------------------------------------------------------


def test_by_question_groups_by_tags_with_passed_folded_and_a_stable_shuffle(client):
    """Are q1b's submissions grouped by their tags (largest first, not graded next, full marks
    last and folded), each group in the question's seeded order?"""
    html = client.get("/q/q1b").text
    groups = re.findall(r'<section class="group" data-group="([^"]+)">\s*<details( open)?', html)
    assert groups == [
        ("transposed + wrong_shape", " open"),
        ("missing", " open"),
        ("status: invalid", " open"),
        ("passed", ""),
    ]
    first = html.split('data-group="missing"')[0]
    order = re.findall(r'<a class="student" href="/s/([^"]+)">', first)
    assert order == sorted(order, key=lambda s: hashlib.sha256(f"q1b\0{s}".encode()).hexdigest())
    assert client.get("/q/q1b").text == html  # stable


def test_tag_filter_shows_only_that_tag(client):
    """Does ?tag=transposed show the three transposed answers and nothing else?"""
    html = client.get("/q/q1b?tag=transposed").text
    shown = re.findall(r'<a class="student" href="/s/([^"]+)">', html)
    assert sorted(shown) == ["bea_mistakes", "ben_mistakes", "bo_mistakes"]


def test_by_student_shows_every_question_with_code_cases_and_feedback(client):
    """Does a student's page show each question with its code, case outcomes and message?"""
    html = client.get("/s/ben_mistakes").text
    assert html.count("data-card") == 7
    assert '<span class="nf">jacobian_xT_WT</span>' in html
    assert "Your answer is the transpose of the expected matrix" in html
    assert '<td>typical</td><td class="num">0.75</td><td>failed</td>' in html


def test_needs_attention_lists_unusable_submissions_with_the_reason(client):
    """Is the invalid notebook listed with why it could not be read?"""
    html = client.get("/attention").text
    assert "eli_broken" in html and "not valid JSON" in html and "ada_correct" not in html


# --- changes ---------------------------------------------------------------------------------


def test_a_rubric_item_on_a_group_then_an_override_reach_every_output(app, client, out):
    """Applied to the transposed group, does an item re-score all three, does set points on one
    replace it, and do gradebook, Canvas export and feedback follow at once?"""
    post(
        client,
        app,
        "/q/q1b/items",
        text="transposed, explained",
        points="0.5",
        comment="Rows are outputs.",
    )
    answer = post(
        client,
        app,
        "/q/q1b/bulk",
        next="/q/q1b?tag=transposed",
        tag="transposed",
        action="apply",
        item="1",
        group="transposed + wrong_shape",
    )
    assert "applied item 1 to 3 of 3 submission(s)" in answer.text
    post(client, app, "/mark/bo_mistakes/q1b", action="points", points="1", version="1")
    table = book(out)
    assert table.loc[["bea_mistakes", "ben_mistakes", "bo_mistakes"], "q1b"].tolist() == [
        0.5,
        0.5,
        1.0,
    ]
    assert table.loc["bo_mistakes", "total"] == 4.0
    canvas = pd.read_csv(out / "canvas.csv").set_index("SIS Login ID")
    assert canvas.loc["bea_mistakes", "Math Primer"] == 3.5
    assert (
        "Manual override: 1 / 1 points (autograded: 0). Rows are outputs."
        in (out / "feedback" / "bo_mistakes.md").read_text()
    )


def test_a_form_from_a_stale_page_is_a_conflict(app, client, out):
    """If another tab changed a mark after this page loaded, is the save refused (409) with who
    changed it, and the other tab's value kept?"""
    post(client, app, "/mark/ada_correct/q3", action="points", points="2", version="0")
    stale = post(client, app, "/mark/ada_correct/q3", action="points", points="1", version="0")
    assert stale.status_code == 409 and "changed by tester" in alert(stale)
    assert book(out).loc["ada_correct", "q3"] == 2.0


def test_editing_an_item_rescores_every_submission_carrying_it(app, client, out):
    """Does changing an item's points re-score all its carriers, and deleting it undo it?"""
    post(client, app, "/q/q1b/items", text="explained", points="0.5")
    post(
        client,
        app,
        "/q/q1b/bulk",
        action="apply",
        item="1",
        student=["ben_mistakes", "bea_mistakes"],
    )
    answer = post(
        client,
        app,
        "/items/1",
        action="save",
        version="1",
        text="explained",
        points="0.25",
        comment="",
    )
    assert "2 submission(s) re-scored" in answer.text
    assert book(out).loc[["bea_mistakes", "ben_mistakes"], "q1b"].tolist() == [0.25, 0.25]
    post(client, app, "/items/1", action="delete", version="2")
    assert book(out).loc[["bea_mistakes", "ben_mistakes"], "q1b"].tolist() == [0.0, 0.0]


def test_overrides_csv_exports_and_imports_the_same_marks(app, client, out, review_demo, tmp_path):
    """Does an exported overrides.csv, imported into a fresh copy, give the same gradebook?"""
    post(client, app, "/q/q3/items", text="units", points="-0.5", comment="Say what w is.")
    post(client, app, "/mark/ada_correct/q3", action="toggle", item="1")
    post(client, app, "/mark/cleo_blank/q1a", action="comment", comment="Please try.", version="0")
    exported = client.get("/overrides.csv")
    assert exported.text.splitlines() == [
        "student,question,points,comment",
        "ada_correct,q3,2.5,Say what w is. (-0.5 pt)",
        "cleo_blank,q1a,0,Please try.",
    ]
    fresh = Path(shutil.copytree(review_demo, tmp_path / "fresh"))
    other = create_app(fresh, token=TOKEN)
    with TestClient(other, base_url=BASE) as second:
        second.get(f"/?token={TOKEN}")
        answer = second.post(
            "/overrides",
            data={"csrf": other.state.ctx.guard.csrf, "next": "/"},
            files={"file": ("overrides.csv", io.BytesIO(exported.content), "text/csv")},
            headers={"Origin": BASE},
        )
        assert "2 of 2 row(s) changed a mark" in answer.text
        bad = second.post(
            "/overrides",
            data={"csrf": other.state.ctx.guard.csrf, "next": "/"},
            files={
                "file": ("o.csv", io.BytesIO(b"student,question,points\nzed,q3,1\n"), "text/csv")
            },
            headers={"Origin": BASE},
        )
        assert bad.status_code == 400 and "no submission from student 'zed'" in alert(bad)
    other.state.ctx.recollator.flush(timeout=60)
    pd.testing.assert_series_equal(book(fresh)["total"], book(out)["total"])


def test_the_audit_trail_names_the_ta(app, client, out):
    """Is the name a TA sets recorded with their changes, and shown in the history?"""
    post(client, app, "/whoami", name="Alice <TA>")
    post(client, app, "/mark/ada_correct/q3", action="comment", comment="ok", version="0")
    [change] = [c for c in ReviewStore.of(out).history() if c.action == "comment set"]
    assert change.who == "Alice <TA>"
    assert "Alice &lt;TA&gt;" in client.get("/history").text


def test_the_gradebook_page_shows_autograded_and_final(app, client):
    """Does the gradebook page show the final points with the autograded ones beside them?"""
    post(client, app, "/mark/cleo_blank/q3", action="points", points="1.5", version="0")
    html = client.get("/gradebook").text
    row = html.split('href="/s/cleo_blank">')[1].split("</tr>")[0]
    assert '<td class="num marked">1.5 <span class="muted">(0)</span></td>' in row
    assert '<td class="num">0</td><td class="num"><strong>1.5</strong></td>' in row


def test_a_folder_that_is_not_graded_is_a_clear_error(tmp_path):
    """Does `review` on a folder without results end with a one-line error, exit code 2?"""
    with pytest.raises(ReviewError, match="is not a graded folder"):
        create_app(tmp_path, token=TOKEN)
    result = CliRunner().invoke(main, ["review", str(tmp_path)])
    assert result.exit_code == 2 and "error:" in result.output and "grade" in result.output
