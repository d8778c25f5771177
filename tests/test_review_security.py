"""Tests of the review app against hostile submissions (autograder/review/security.py and the
rendering of every page): markup in student ids, roster names, file names, code, the judge's
messages (an exception text) and derivations (raw HTML, javascript: links, LaTeX macros)."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from review_support import HOSTILE_NAME, HOSTILE_TEXTS
from starlette.testclient import TestClient

from autograder.review.app import create_app
from autograder.review.security import Guard

TOKEN = "hostile-token"
BASE = "http://127.0.0.1"


class Page(HTMLParser):
    """The elements of a page, and its visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture()
def client(review_hostile: Path, tmp_path: Path):
    out = Path(shutil.copytree(review_hostile, tmp_path / "out"))
    app = create_app(out, token=TOKEN)
    with TestClient(app, base_url=BASE) as client:
        client.get(f"/?token={TOKEN}")
        client.app_state = app.state
        yield client
    app.state.ctx.recollator.flush(timeout=60)


PAGES = [
    "/",
    "/q/q1a",
    "/s/mallory",
    f"/s/{quote(HOSTILE_NAME, safe='')}",
    "/attention",
    "/gradebook",
    "/history",
]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_carries_student_markup(client, path):
    """On every page, is the only script the app's own file, are there no event handlers,
    inline styles, frames or images, and no link outside the app but http(s)/mailto?"""
    answer = client.get(path)
    assert answer.status_code == 200
    page = Page(answer.text)
    scripts = [a.get("src") for tag, a in page.elements if tag == "script"]
    assert scripts == ["/static/review.js"]
    for tag, attrs in page.elements:
        assert tag not in ("iframe", "img", "object", "embed", "svg", "style", "base"), tag
        assert not [name for name in attrs if name.startswith("on") or name == "style"], (
            tag,
            attrs,
        )
        href = attrs.get("href") or ""
        assert not href.lower().startswith(("javascript:", "data:", "vbscript:")), href


def test_hostile_derivations_and_messages_show_as_text(client):
    """Does the TA see what the student typed (the script tag, the javascript: link, the
    exception text) as text, while a legitimate formula is rendered as MathML?"""
    html = client.get("/s/mallory").text
    text = "".join(Page(html).text)
    for piece in HOSTILE_TEXTS:
        assert piece in text
    assert "raised ValueError: <img src=x onerror=window.__pwned=1>" in text
    assert "<mtext>so</mtext>" in html and "<msub>" in html
    hrefs = [a["href"] for _, a in Page(html).elements if a.get("href")]
    assert hrefs and not [h for h in hrefs if not h.startswith(("/", "http://", "https://"))]


def test_hostile_names_are_text_in_pages_and_links(client):
    """Are a student id, a roster name and a file name made of markup shown as text, and the id
    quoted in links?"""
    text = "".join(Page(client.get("/s/mallory").text).text)
    assert '<b onmouseover="window.__pwned=1">Mallory</b><script>window.__pwned=1</script>' in text
    assert "<svg onload=window.__pwned=1>.ipynb" in text
    index = client.get("/q/q1a").text
    assert f'href="/s/{quote(HOSTILE_NAME, safe="")}"' in index
    assert HOSTILE_NAME in "".join(Page(index).text)


def test_markup_typed_by_a_ta_is_text_too(client):
    """Are a rubric item's text and a comment with markup escaped where they are shown, and in
    the student's feedback file?"""
    csrf = client.app_state.ctx.guard.csrf
    client.post(
        "/q/q1a/items",
        data={
            "csrf": csrf,
            "next": "/q/q1a",
            "points": "0.5",
            "text": "<script>window.__pwned=1</script>",
            "comment": "<img src=x onerror=window.__pwned=1>",
        },
        headers={"Origin": BASE},
    )
    client.post(
        "/mark/mallory/q1a",
        data={"csrf": csrf, "next": "/", "action": "toggle", "item": "1"},
        headers={"Origin": BASE},
    )
    page = Page(client.get("/s/mallory").text)
    assert [a.get("src") for t, a in page.elements if t == "script"] == ["/static/review.js"]
    assert "<img src=x onerror=window.__pwned=1> (+0.5 pt)" in "".join(page.text)
    out = client.app_state.ctx.out
    feedback = (out / "feedback" / "mallory.html").read_text()
    assert "&lt;img src=x onerror=window.__pwned=1&gt;" in feedback and "<img" not in feedback


def test_tokens_are_random_and_compared_in_constant_time():
    """Are the cookie and CSRF secrets derived from the token, distinct, and do near misses
    fail?"""
    guard = Guard("a" * 43)
    assert guard.cookie != guard.csrf and guard.csrf_ok(guard.csrf)
    assert not guard.csrf_ok(guard.csrf[:-1] + "0") and not guard.csrf_ok(None)
    assert not guard.token_ok("a" * 42) and guard.token_ok("a" * 43)
