"""Tests for rendering student content safely (autograder/review/render.py)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from autograder.review.render import highlight_python, render_markdown

HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '<iframe src="https://evil.example/"></iframe>',
    "<style>body{display:none}</style>",
    "[click](javascript:window.__pwned=1)",
    "<javascript:window.__pwned=1>",
    '<a href="javascript:window.__pwned=1">x</a>',
    "[d](data:text/html,<script>window.__pwned=1</script>)",
    "[rel](/items/1?action=delete)",
    "![t](https://evil.example/pixel.png)",
    r"$\href{javascript:window.__pwned=1}{click}$",
    r"$\text{<img src=x onerror=window.__pwned=1>}$",
    r"$x</math><img src=x onerror=window.__pwned=1>$",
    r"$\style{background:url(https://evil.example/x)}{y}$",
    r"$\input{/etc/passwd}$",
    r"$\def\a{\a\a}\a$",
    r"$$\begin{pmatrix}<script>window.__pwned=1</script>\end{pmatrix}$$",
    "<svg><script>window.__pwned=1</script></svg>",
    "<math><mtext><img src=x onerror=window.__pwned=1></mtext></math>",
]


class Elements(HTMLParser):
    """Every element and attribute of an HTML fragment, as a browser's tokenizer sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_inert(text):
    """Does hostile Markdown come out with no script, no event handler, no style, no frame, no
    image, and no link other than http(s)/mailto?"""
    elements = Elements(str(render_markdown(text))).tags
    forbidden = {"script", "iframe", "style", "img", "svg", "object", "embed", "link", "meta"}
    assert not [tag for tag, _ in elements if tag in forbidden]
    for _, attrs in elements:
        assert not [a for a in attrs if a.startswith("on") or a in ("style", "src")]
        assert attrs.get("class") in (None, "note")
        if "href" in attrs:
            assert attrs["href"].startswith(("http://", "https://", "mailto:")), attrs


def test_latex_becomes_mathml_and_markdown_stays_markdown():
    """Is math rendered to MathML on the server and ordinary Markdown kept (emphasis, tables,
    safe links)?"""
    html = str(
        render_markdown(
            r"*so* $\frac{\partial z}{\partial x} = W$ [doc](https://numpy.org)"
            "\n\n| a | b |\n|---|---|\n| 1 | 2 |"
        )
    )
    assert '<math display="inline">' in html and "<mfrac>" in html
    assert "<em>so</em>" in html and "<table>" in html
    assert '<a href="https://numpy.org" rel="noopener noreferrer nofollow">doc</a>' in html


def test_raw_html_shows_as_text():
    """Is raw HTML in a derivation shown to the TA as the text the student typed?"""
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in str(
        render_markdown("<script>window.__pwned=1</script>")
    )


def test_unrenderable_latex_is_shown_as_source():
    """Does a formula the converter refuses (a recursive macro) show as its source?"""
    assert r'<code title="not rendered">\def\a{\a\a}\a</code>' in str(
        render_markdown(r"$\def\a{\a\a}\a$")
    )


def test_code_is_highlighted_and_escaped():
    """Is student code highlighted with its markup escaped?"""
    html = str(highlight_python('def f():\n    return "</pre><script>x()</script>"\n'))
    assert '<span class="k">def</span>' in html and "&lt;/pre&gt;&lt;script&gt;" in html
    assert [
        tag for tag, _ in Elements(html).tags if tag not in ("div", "pre", "span", "code")
    ] == []
