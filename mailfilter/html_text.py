"""HTML → readable plain text for the classifier: lxml's HTML parser (libxml2), then one walk.

What the walk keeps and drops:
- Text of the document, entities decoded, source line breaks read as spaces (except in `<pre>`).
- Block elements (paragraphs, divs, list items, rows, headings, ...) start and end a line, so
  paragraphs come out as lines with a blank line between them; table cells are separated by a
  space.
- A link becomes its text followed by `(host)`, the host given by the caller's `host` function
  (nothing when the link has no host or its text already shows it); an image becomes its alt
  text.
- `<head>` (title included), scripts, styles, comments and other non-content elements are dropped.

libxml2 parses in linear time and recovers from any markup, so hostile HTML costs bounded work;
the walk is iterative, so deep nesting cannot exhaust the stack.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Callable

from lxml import etree
from lxml import html as lxml_html

logger = logging.getLogger(__name__)

SKIP = frozenset({
    "head", "title", "script", "style", "noscript", "template", "object", "embed", "applet",
    "svg", "math", "select", "option", "iframe", "frameset", "map",
})  # fmt: skip
BLOCK = frozenset({
    "html", "body", "p", "div", "br", "hr", "tr", "li", "ul", "ol", "dl", "dt", "dd", "table",
    "thead", "tbody", "tfoot", "caption", "blockquote", "pre", "center", "form", "fieldset",
    "address", "section", "article", "header", "footer", "nav", "aside", "main", "figure",
    "figcaption", "details", "summary", "h1", "h2", "h3", "h4", "h5", "h6",
})  # fmt: skip
CELL = frozenset({"td", "th"})

_local = threading.local()  # lxml parsers are not to be shared between threads
_TAG = re.compile(r"<[^<>]*>")
_LINE_BREAKS = str.maketrans("\r\n", "  ")


def html_to_text(markup: str, host: Callable[[str], str]) -> str:
    """Readable text of `markup`; `host(url)` names a link's host ("" for none). Never raises.
    Markup libxml2 gives up on (nesting deeper than 2,048) is read with its tags stripped."""
    parser = _parser()
    try:
        root = etree.fromstring(markup.encode("utf-8", "replace"), parser)
    except (etree.LxmlError, ValueError) as e:
        logger.debug("lxml cannot parse HTML (%s), stripping tags", type(e).__name__)
        root = None
    fatal = any(e.level == etree.ErrorLevels.FATAL for e in parser.error_log)
    if root is None or fatal:  # nothing but whitespace or comments, or too deep
        return html.unescape(_TAG.sub(" ", markup))
    return _walk(root, host)


def _parser() -> lxml_html.HTMLParser:
    """This thread's HTML parser."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = lxml_html.HTMLParser(
            encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True,
            recover=True, huge_tree=True,  # depth limit 2,048 instead of 256; the caller
        )  # fmt: skip  # bounds the input's size
    return parser


def _walk(root: etree._Element, host: Callable[[str], str]) -> str:
    """Text of the tree under `root`, as the module docstring describes."""
    out: list[str] = []
    links: list[tuple[int, str]] = []  # (index in out where the link's text starts, href)
    skipped = 0  # depth inside an element whose content is dropped
    pre = 0  # depth inside <pre>

    def text(value: str | None) -> None:
        if value:
            out.append(value if pre else value.translate(_LINE_BREAKS))

    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        tag = tag.lower()
        if event == "start":
            if skipped or tag in SKIP:
                skipped += 1
                continue
            if tag in BLOCK:
                out.append("\n")
            elif tag in CELL:
                out.append(" ")
            if tag == "pre":
                pre += 1
            elif tag == "a":
                links.append((len(out), el.get("href") or ""))
            elif tag == "img":
                out.append(f" {el.get('alt') or ''} ")
            text(el.text)
            continue
        if skipped:
            skipped -= 1
            if skipped:
                continue
        else:
            if tag == "a" and links:
                start, href = links.pop()
                name = host(href.strip())
                if name and name not in "".join(out[start:]).lower():
                    out.append(f" ({name})")
            elif tag == "pre":
                pre = max(0, pre - 1)
            if tag in BLOCK:
                out.append("\n")
            elif tag in CELL:
                out.append(" ")
        if el is not root:
            text(el.tail)
    return "".join(out)
