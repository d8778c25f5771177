"""Student content made safe to show: highlighted code and rendered derivations.

- Code is highlighted by Pygments (its HTML formatter escapes every character of the source).
- Derivations are Markdown rendered by markdown-it-py with raw HTML **disabled**, ``$...$`` and
  ``$$...$$`` math converted on the server to MathML by latex2mathml (no script, no font
  download, no macro ever reads a file: LaTeX is never run, only translated), images shown as
  their alt text, and the whole result passed through the nh3 (ammonia) sanitiser with an
  allow-list of Markdown and MathML tags, no ``style``/``class``/event attributes, and links
  only to ``http``, ``https`` and ``mailto`` targets.

The page's Content-Security-Policy (see :mod:`.security`) is the second wall: even markup that
slipped through could run no script and load nothing from elsewhere.
"""

from __future__ import annotations

import html
import logging
from functools import lru_cache

import nh3
from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from markupsafe import Markup
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

log = logging.getLogger(__name__)

MAX_MARKDOWN = 50_000
"""Characters of one derivation rendered (the rest is cut, with a note)."""
MAX_FORMULA = 2_000
"""Characters of one formula converted to MathML (longer ones are shown as source)."""
CODE_CSS_CLASS = "hl"
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

_MARKDOWN_TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "span",
    "del",
    "s",
}
_MATHML_TAGS = {
    "math",
    "mrow",
    "mi",
    "mn",
    "mo",
    "ms",
    "mspace",
    "mtext",
    "msub",
    "msup",
    "msubsup",
    "mfrac",
    "msqrt",
    "mroot",
    "mover",
    "munder",
    "munderover",
    "mtable",
    "mtr",
    "mtd",
    "mstyle",
    "mpadded",
    "mphantom",
    "menclose",
    "merror",
    "mmultiscripts",
    "mprescripts",
    "none",
}
_MATHML_ATTRIBUTES = {
    "mathvariant",
    "stretchy",
    "accent",
    "accentunder",
    "fence",
    "separator",
    "lspace",
    "rspace",
    "columnalign",
    "rowalign",
    "columnspacing",
    "rowspacing",
    "columnlines",
    "rowlines",
    "frame",
    "displaystyle",
    "scriptlevel",
    "linethickness",
    "width",
    "height",
    "depth",
    "minsize",
    "maxsize",
    "movablelimits",
    "form",
    "largeop",
    "symmetric",
    "notation",
    "mathsize",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
    "math": {"display"},
    **{tag: set(_MATHML_ATTRIBUTES) for tag in _MATHML_TAGS - {"math"}},
}


@lru_cache(maxsize=8192)
def highlight_python(code: str) -> Markup:
    """Python source as highlighted, escaped HTML (``<div class="hl"><pre>...``)."""
    return Markup(highlight(code, PythonLexer(), _formatter()))


def code_css() -> str:
    """The stylesheet of :func:`highlight_python`'s classes (served by the app)."""
    return _formatter().get_style_defs(f".{CODE_CSS_CLASS}")


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> Markup:
    """A derivation's Markdown as sanitised HTML with MathML formulas (see the module docstring)."""
    note = ""
    if len(text) > MAX_MARKDOWN:
        text, note = text[:MAX_MARKDOWN], f"(cut: only the first {MAX_MARKDOWN} characters shown)"
    rendered = _markdown().render(text)
    if note:
        rendered += f'<p class="note">{html.escape(note)}</p>'
    return Markup(sanitise(rendered))


def sanitise(fragment: str) -> str:
    """An HTML fragment reduced to the allow-list (tags, attributes, link schemes)."""
    return nh3.clean(
        fragment,
        tags=_MARKDOWN_TAGS | _MATHML_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=set(SAFE_SCHEMES),
        attribute_filter=_only_absolute_links,
        allowed_classes={"span": {"note"}},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def formula(latex: str, *, display: bool) -> str:
    """One LaTeX formula as MathML, or its source as code when it cannot be converted."""
    if len(latex) > MAX_FORMULA:
        return _source(latex, display=display, why="formula too long to render")
    try:
        mathml = latex_to_mathml(latex, display="block" if display else "inline")
    except Exception as exc:  # noqa: BLE001 - any failure of the converter shows the source
        log.debug("latex2mathml could not convert %r: %s", latex[:80], exc)
        return _source(latex, display=display, why="not rendered")
    return mathml


def _source(latex: str, *, display: bool, why: str) -> str:
    tag = "pre" if display else "code"
    return f'<{tag} title="{html.escape(why)}">{html.escape(latex)}</{tag}>'


def _only_absolute_links(tag: str, attribute: str, value: str) -> str | None:
    """Keep ``href`` only with an allowed scheme (no relative links into the app)."""
    if attribute == "href":
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        return value if scheme in SAFE_SCHEMES else None
    return value


@lru_cache(maxsize=1)
def _formatter() -> HtmlFormatter:
    return HtmlFormatter(cssclass=CODE_CSS_CLASS, wrapcode=True)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.use(dollarmath_plugin, allow_labels=False, allow_space=True, double_inline=True)

    def inline(self, tokens, idx, options, env) -> str:
        return formula(tokens[idx].content, display=False)

    def block(self, tokens, idx, options, env) -> str:
        return f"<p>{formula(tokens[idx].content, display=True)}</p>\n"

    def inline_block(self, tokens, idx, options, env) -> str:
        return formula(tokens[idx].content, display=True)

    def image(self, tokens, idx, options, env) -> str:
        alt = "".join(child.content for child in tokens[idx].children or [])
        return f'<span class="note">[image: {html.escape(alt)}]</span>'

    md.add_render_rule("math_inline", inline)
    md.add_render_rule("math_inline_double", inline_block)
    md.add_render_rule("math_block", block)
    md.add_render_rule("image", image)
    return md
