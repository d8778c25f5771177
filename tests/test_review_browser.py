"""The review app in a real browser: Debian's Chromium driven by Playwright (no browser
download), against `python -m autograder review` serving a graded demo folder."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pandas as pd
import pytest
from review_support import HOSTILE_NAME, serving

from helpers import CHROMIUM

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_a_ta_grades_the_transposed_group_and_overrides_one_student(review_demo, tmp_path, page):
    """In Chromium: filter q1b's transposed group, add a rubric item, apply it to the whole
    group, set one student's points by hand, toggle an item with the keyboard; do the
    gradebook, the LMS exports and the feedback files say so?"""
    out = Path(shutil.copytree(review_demo, tmp_path / "out"))
    with serving(out) as (url, _):
        page.goto(url)
        assert "token" not in page.url
        page.get_by_role("link", name="q1b", exact=True).first.click()
        page.locator("a.tag", has_text="transposed (3)").click()
        assert page.locator("[data-card]").count() == 3

        page.get_by_label("new item text").fill("transposed, but the derivation is right")
        page.get_by_label("new item points").fill("0.5")
        page.get_by_label("new item comment").fill("Rows are outputs: (J)_ij = dz_i/dx_j.")
        page.get_by_role("button", name="add item").click()
        page.locator("p.done", has_text="rubric item 1 created").wait_for()

        page.get_by_label("bulk action").select_option("apply")
        page.locator("[data-group-apply]").first.click()
        page.locator("p.done", has_text="applied item 1 to 3 of 3 submission(s)").wait_for()
        assert page.locator("button.item.on").count() == 3

        card = page.locator("[data-card]", has=page.locator("a.student", has_text="bo_mistakes"))
        card.locator("[data-points]").fill("1")
        card.get_by_role("button", name="set", exact=True).click()
        page.locator("p.done", has_text="bo_mistakes, q1b: points set to 1").wait_for()

        # Keyboard: on q3, j goes to the first card and 1 toggles the first rubric item.
        page.goto(url.split("/?")[0] + "/q/q3")
        page.get_by_label("new item text").fill("units of w missing")
        page.get_by_label("new item points").fill("-0.5")
        page.get_by_role("button", name="add item").click()
        page.locator("p.done").wait_for()
        # the shortcuts are bound by a deferred script: press keys once the page has loaded
        page.wait_for_load_state("load")
        page.keyboard.press("j")
        first = page.locator("[data-card].current a.student").inner_text()
        page.keyboard.press("1")
        page.locator("p.done", has_text=f"applied item 2 to {first}").wait_for()
        page.screenshot(path=str(tmp_path / "q3.png"))

        page.goto(url.split("/?")[0] + "/report")
        assert "Manual overrides" in page.content()

    book = pd.read_csv(out / "gradebook.csv").set_index("student")
    assert book.loc[["bea_mistakes", "ben_mistakes", "bo_mistakes"], "q1b"].tolist() == [
        0.5,
        0.5,
        1.0,
    ]
    assert list(book.columns[:10]) == [
        "q1a",
        "q1b",
        "q1c",
        "q1d",
        "q2a",
        "q2b",
        "q3",
        "total",
        "percent",
        "status",
    ]
    canvas = pd.read_csv(out / "canvas.csv").set_index("SIS Login ID")["Math Primer"]
    moodle = pd.read_csv(out / "moodle.csv").set_index("ID number")["Math Primer"]
    for student in ("bea_mistakes", "ben_mistakes", "bo_mistakes"):
        assert canvas[student] == moodle[student] == book.loc[student, "total"]
    assert book.loc["bo_mistakes", "total"] == 4.0
    feedback = (out / "feedback" / "bea_mistakes.md").read_text()
    assert (
        "Manual override: 0.5 / 1 points (autograded: 0). Rows are outputs: "
        "(J)_ij = dz_i/dx_j. (+0.5 pt)"
    ) in feedback
    assert (
        "Manual override: 1 / 1 points (autograded: 0)"
        in (out / "feedback" / "bo_mistakes.html").read_text()
    )
    q3 = book.loc[first, "q3"]
    assert q3 == max(
        0.0, pd.read_csv(review_demo / "gradebook.csv").set_index("student").loc[first, "q3"] - 0.5
    )


def test_hostile_submissions_run_no_script_in_the_browser(review_hostile, tmp_path, page):
    """Does any page (question, student, attention, gradebook, history, feedback, report) of a
    batch full of markup and javascript: links run script, open a dialog or load anything from
    another origin? (`window.__pwned` must stay undefined)"""
    out = Path(shutil.copytree(review_hostile, tmp_path / "out"))
    dialogs, foreign = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    with serving(out) as (url, _):
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        page.on("request", lambda r: None if r.url.startswith(origin) else foreign.append(r.url))
        page.goto(url)
        paths = [
            "/",
            "/q/q1a",
            "/s/mallory",
            f"/s/{quote(HOSTILE_NAME, safe='')}",
            "/attention",
            "/gradebook",
            "/history",
            "/feedback/mallory",
            "/report",
        ]
        for path in paths:
            page.goto(origin + path)
            page.mouse.move(10, 10)
            for link in page.locator(".md a").all()[:5]:  # hovering student links does nothing
                link.hover()
            page.wait_for_timeout(200)
            assert page.evaluate("typeof window.__pwned") == "undefined", path
        page.goto(origin + "/s/mallory")
        shown = page.locator(".derivation .md").first.inner_text()
        assert "<script>window.__pwned=1</script>" in shown
        assert page.locator(".derivation math").count() >= 3
    assert dialogs == [] and foreign == []
