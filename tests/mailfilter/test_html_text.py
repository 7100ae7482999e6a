"""html_text: HTML → the plain text the classifier reads."""

from __future__ import annotations

import time

from mailfilter.html_text import html_to_text


def host(url: str) -> str:
    """A stand-in for message._host: the part between :// and the next slash."""
    return url.split("://", 1)[1].split("/", 1)[0] if "://" in url else ""


def test_paragraphs_become_lines_and_cells_are_spaced() -> None:
    text = html_to_text(
        "<html><body><h1>Title</h1><p>One\nline</p><div>Two</div>"
        "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>x<br>y</body></html>",
        host,
    )
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    assert lines == ["Title", "One line", "Two", "a  b", "c", "x", "y"]


def test_links_show_their_host_once_and_images_their_alt_text() -> None:
    text = html_to_text(
        "<p><a href='http://shop.example/x?id=1'>Buy <b>now</b></a> or "
        "<a href='http://www.shop.example/'>www.shop.example</a> "
        "<a href='#top'>top</a> <a href=' http://bare.example'></a>"
        "<img src='http://img.example/p.gif' alt='Cheap pills'><img src='x.gif'></p>",
        host,
    )
    assert " ".join(text.split()) == (
        "Buy now (shop.example) or www.shop.example top (bare.example) Cheap pills"
    )


def test_head_scripts_styles_and_comments_are_dropped() -> None:
    text = html_to_text(
        "<html><head><title>Secret title</title><style>p{color:red}</style></head>"
        "<body><!-- hidden comment --><script>var x = 1;</script>Shown"
        "<noscript>no</noscript> text</body></html>",
        host,
    )
    assert " ".join(text.split()) == "Shown text"


def test_pre_keeps_its_line_breaks() -> None:
    text = html_to_text("<p>a\nb</p><pre>c\nd</pre>", host)
    assert "a b" in text and "c\nd" in text


def test_entities_are_decoded_and_broken_markup_recovered() -> None:
    assert " ".join(html_to_text("<p>Fish &amp; chips &euro;5<b>bold<i>x</p>", host).split()) == (
        "Fish & chips €5boldx"
    )
    assert html_to_text("", host) == ""
    assert html_to_text("   ", host).strip() == ""
    assert "plain" in html_to_text("plain words, no tags", host)


def test_deep_nesting_and_hostile_markup_cost_bounded_time() -> None:
    for markup in ("<div>" * 100_000 + "deep", "<a" * 50_000, "<!--" * 50_000, "&" * 100_000,
                   "<table><tr><td>" * 20_000, "\x00\udcff<p>x"):  # fmt: skip
        start = time.process_time()
        text = html_to_text(markup, host)
        assert isinstance(text, str)
        assert time.process_time() - start < 5, markup[:10]
    for depth in (1_000, 100_000):  # parsed; past libxml2's limit, stripped of tags
        assert "deep" in html_to_text("<div>" * depth + "deep", host)
