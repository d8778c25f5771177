"""Regenerate the review app's screenshots in docs/images/ (used by the README).

Usage: python scripts/review_screenshots.py [--out DIR]

Grades the demo batch (``python -m autograder demo``) plus two copies of ``ben_mistakes`` (one
with its derivation written), serves it with ``python -m autograder review``, does what a TA does
(a rubric item applied to q1b's ``transposed`` group, one student's points set by hand) in
Debian's Chromium through Playwright, and saves the pages.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from review_support import TRANSPOSED_COPIES, serving  # noqa: E402

from autograder.pack.master import DERIVATION_KEY  # noqa: E402

IMAGES = REPO / "docs" / "images"
DERIVATION = r"""With $z = x^T W^T$ we have $z_i = \sum_j W_{ij} x_j$, so

$$(J_z)_{ij} = \frac{\partial z_i}{\partial x_j} = W_{ij}, \qquad J_z = W^T.$$
"""


def prepare(root: Path) -> Path:
    """A graded demo folder with a three-strong transposed group and one derivation."""
    out = root / "demo"
    run = [sys.executable, "-m", "autograder"]
    subprocess.run([*run, "demo", "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    subs = out / "submissions"
    for name in TRANSPOSED_COPIES:
        shutil.copy(subs / "ben_mistakes.ipynb", subs / f"{name}.ipynb")
    nb = nbformat.read(str(subs / "bea_mistakes.ipynb"), as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get(DERIVATION_KEY) == "q1b")
    answer.source = DERIVATION
    nbformat.write(nb, str(subs / "bea_mistakes.ipynb"))
    subprocess.run(
        [*run, "grade", str(subs), "--out", str(out)], cwd=REPO, check=True, capture_output=True
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        out = prepare(args.out or Path(tmp))
        IMAGES.mkdir(parents=True, exist_ok=True)
        with serving(out, "--user", "alice") as (url, _), sync_playwright() as p:
            base = url.split("/?")[0]
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url)
            page.goto(base + "/q/q1b?tag=transposed")
            page.get_by_label("new item text").fill("transposed, derivation right")
            page.get_by_label("new item points").fill("0.5")
            page.get_by_label("new item comment").fill("Rows are outputs: (J)_ij = dz_i/dx_j.")
            page.get_by_role("button", name="add item").click()
            page.locator("[data-group-apply]").first.click()
            page.locator("p.done").wait_for()
            card = page.locator(
                "[data-card]", has=page.locator("a.student", has_text="bo_mistakes")
            )
            card.locator("[data-points]").fill("1")
            card.get_by_role("button", name="set", exact=True).click()
            page.locator("p.done").wait_for()
            page.goto(base + "/q/q1b?tag=transposed")
            page.set_viewport_size({"width": 1280, "height": 1150})
            page.screenshot(path=str(IMAGES / "review-question.png"))
            page.set_viewport_size({"width": 1280, "height": 860})
            page.goto(base + "/s/bea_mistakes")
            page.locator("[data-card]").nth(1).evaluate("e => e.scrollIntoView()")
            page.screenshot(path=str(IMAGES / "review-student.png"))
            page.goto(base + "/")
            page.screenshot(path=str(IMAGES / "review-overview.png"))
            page.goto(base + "/gradebook")
            page.screenshot(path=str(IMAGES / "review-gradebook.png"))
            browser.close()
    for image in sorted(IMAGES.glob("review-*.png")):
        print(image.relative_to(REPO))


if __name__ == "__main__":
    main()
