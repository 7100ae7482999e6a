"""`mailfilter.message`: raw RFC 822 bytes become bounded, deterministic model text; never raise."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mailfilter.message as M
from mailfilter.message import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_RAW_BYTES,
    text_from_parts,
    to_text,
    to_text_with_stats,
)

HEADER_BLOCK = (
    b"Received: from relay.example.net (relay.example.net [192.0.2.7])\r\n"
    b"\tby mx.example.org with ESMTP id 4F2A1; Tue, 3 Sep 2002 10:00:00 +0000\r\n"
    b"Message-ID: <20020903100000.4F2A1@relay.example.net>\r\n"
    b"Date: Tue, 3 Sep 2002 10:00:00 +0000\r\n"
    b"From: Jane Doe <jane@example.com>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: Lunch on Friday?\r\n"
    b"MIME-Version: 1.0\r\n"
)


def mail(body: bytes, *headers: bytes) -> bytes:
    """A message from the standard header block, extra header lines, a blank line and `body`."""
    return HEADER_BLOCK + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def encoded_word(text: str, charset: str) -> str:
    """An RFC 2047 B-encoded word."""
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def assert_clean(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> None:
    """The invariants every output keeps, whatever the input."""
    assert isinstance(text, str)
    assert len(text) <= max_chars
    assert not any("\ud800" <= c <= "\udfff" for c in text), "lone surrogates reach the tokenizer"
    assert not any(c in text for c in "\r\x00\x1b\t"), "control characters survive"
    assert text == text.strip()
    assert "\n\n\n" not in text
    text.encode("utf-8")  # encodable, i.e. the tokenizer can take it


# --- format ----------------------------------------------------------------------------------


def test_plain_message_gives_from_subject_blank_line_body() -> None:
    text = to_text(mail(b"Are you   free at noon?\r\n\r\n\r\n\r\n-- \r\nJane\r\n"))
    assert text == (
        "From: Jane Doe <jane@example.com>\n"
        "Subject: Lunch on Friday?\n"
        "\n"
        "Are you free at noon?\n"
        "\n"
        "--\n"
        "Jane"
    )


def test_relay_date_id_and_recipient_headers_are_left_out() -> None:
    text = to_text(mail(b"hello\r\n"))
    for noise in ("relay.example.net", "192.0.2.7", "2002", "4F2A1", "bob@example.org", "To:"):
        assert noise not in text


def test_reply_to_and_non_plain_content_type_are_kept() -> None:
    raw = mail(
        b"<p>Buy now</p>\r\n",
        b"Reply-To: Offers <offers@example.net>",
        b'Content-Type: text/html; charset="utf-8"; format=flowed',
    )
    assert to_text(raw) == (
        "From: Jane Doe <jane@example.com>\n"
        "Reply-To: Offers <offers@example.net>\n"
        "Subject: Lunch on Friday?\n"
        "Content-Type: text/html\n"
        "\n"
        "Buy now"
    )


def test_whitespace_and_invisible_characters_are_normalised() -> None:
    body = "a\t\tb\u00a0\u00a0c  d\u200be\ufeff\r\n \r\n\r\n\r\n   f\x07g\r\n" + "=" * 40
    text = to_text(mail(body.encode(), b"Content-Type: text/plain; charset=utf-8"))
    assert text.endswith("\n\na b c de\n\nf g\n" + "=" * 10)


def test_output_is_capped_in_characters_and_keeps_attachment_lines() -> None:
    msg = EmailMessage()
    msg["Subject"] = "long"
    msg.set_content("word " * 20_000)
    msg.add_attachment(b"PK\x03\x04", maintype="application", subtype="zip", filename="a.zip")
    text, stats = to_text_with_stats(msg.as_bytes(), max_chars=500)
    assert len(text) <= 500 and stats.truncated
    assert "[attachment: a.zip application/zip]" in text.split("\n\n")[0]
    assert len(to_text(msg.as_bytes())) <= DEFAULT_MAX_CHARS


# --- MIME structure --------------------------------------------------------------------------


ALTERNATIVE = (
    b'Content-Type: multipart/alternative; boundary="ALT"\r\n\r\n'
    b"preamble\r\n--ALT\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n"
    b"--ALT\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
    b"<html><body><p>HTML version</p></body></html>\r\n--ALT--\r\n"
)


def test_multipart_alternative_prefers_text_plain() -> None:
    text = to_text(HEADER_BLOCK + ALTERNATIVE % b"Plain version")
    assert text.endswith("Content-Type: multipart/alternative\n\nPlain version")
    assert "HTML version" not in text and "preamble" not in text


def test_multipart_alternative_falls_back_to_html_when_plain_is_empty() -> None:
    text = to_text(HEADER_BLOCK + ALTERNATIVE % b"  ")
    assert text.endswith("\n\nHTML version")


def test_html_only_becomes_readable_text_with_link_hosts() -> None:
    html = (
        b"<html><head><title>Offer</title><style>p {color: red}</style>"
        b"<script>var tracking = 1;</script>\r\n"  # no </head>: it must not hide the body
        b"<body><table><tr><td><b>FREE</b> pills&nbsp;&amp; more</td>"
        b"<td><a href='http://www.Cheap-Pills.example/track?id=8f3e'>Click here</a></td></tr>"
        b"</table><img src='http://img.example/pixel.gif'><br>"
        b"<a href='mailto:sales@spam.example?subject=x'>Mail us</a></body></html>\r\n"
    )
    text = to_text(mail(html, b"Content-Type: text/html; charset=iso-8859-1"))
    body = text.split("\n\n", 1)[1]
    assert "FREE pills & more" in body
    assert "Click here (www.cheap-pills.example)" in body
    assert "Mail us (spam.example)" in body
    for clutter in ("<", "track?id", "pixel.gif", "img.example", "tracking", "color", "Offer"):
        assert clutter not in body


@pytest.mark.parametrize("opening", [
    b"<html><body>", b"\r\n  <!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.0//EN\">\r\n<html>",
    b"<!-- saved from url=(0022)http://internet.e-mail -->\r\n<HTML><BODY>",
    b"<body bgcolor=white>",
    b"<head><title>Offer</title></head>",
])
def test_plain_text_that_is_an_html_document_is_read_as_html(opening: bytes) -> None:
    page = opening + b"<p align='center'><font size=5><b>You have won</b></font></p>" \
        b"<a href='http://claim.example/x?id=1'>Claim now</a></body></html>\r\n"
    text = to_text(mail(page, b"Content-Type: text/plain; charset=us-ascii"))
    body = text.split("\n\n", 1)[1]
    assert "You have won" in body and "Claim now (claim.example)" in body
    assert "<" not in body and "font" not in body and "Offer" not in body


@pytest.mark.parametrize("body", [
    b"Use <b>bold</b> in the template, or <html> at the top of the page.",
    b"Quoting the page:\r\n<html><body>hi</body></html>",  # HTML inside a note stays as written
    b"<p>A paragraph tag first is not a document.</p>",
])
def test_plain_text_that_only_mentions_html_is_kept_as_written(body: bytes) -> None:
    text = to_text(mail(body, b"Content-Type: text/plain; charset=us-ascii"))
    assert text.split("\n\n", 1)[1] == body.decode().replace("\r\n", "\n")


def test_text_from_parts_reads_an_html_document_body_as_to_text_does() -> None:
    page = "<html><body><p>You <b>have</b> won</p></body></html>"
    raw = mail(page.encode(), b"Content-Type: text/plain; charset=utf-8")
    assert text_from_parts("Lunch on Friday?", page, "Jane Doe <jane@example.com>") == to_text(raw)
    assert to_text(raw).endswith("\n\nYou have won")


def test_html_document_sniffing_is_bounded() -> None:
    comments = b"<!--" * 200_000  # never closed: the opening is not found, in bounded work
    text = to_text(mail(comments + b"<html>x", b"Content-Type: text/plain"))
    assert text.split("\n\n", 1)[1].startswith("<!--")


def test_urls_in_plain_text_become_their_host() -> None:
    raw = mail(b"See https://user@Shop.example:8080/a/b?c=d#e or <http://x.example/p>.\r\n")
    assert to_text(raw).endswith("\n\nSee shop.example or x.example.")


def test_attachments_are_listed_and_only_text_attachments_are_read() -> None:
    msg = EmailMessage()
    msg["From"] = "Billing <billing@example.com>"
    msg["Subject"] = "Invoice"
    msg.set_content("Please find the invoice attached.")
    msg.add_attachment(b"PK\x03\x04" * 1000, maintype="application", subtype="zip",
                       filename="invoice.zip")  # fmt: skip
    msg.add_attachment("Attached notes.", filename="notes.txt")
    msg.add_attachment(b"GIF89a", maintype="image", subtype="gif")
    msg.add_attachment("<html><body><p>Buy <b>now</b></p></body></html>", subtype="html",
                       filename="offer.html")  # fmt: skip
    msg.add_attachment(b"<p>Premium</p>", maintype="application", subtype="octet-stream",
                       filename="Brand New.htm")  # fmt: skip
    msg.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream",
                       filename="data.bin")  # fmt: skip
    text, stats = to_text_with_stats(msg.as_bytes())
    assert text == (
        "From: Billing <billing@example.com>\n"
        "Subject: Invoice\n"
        "Content-Type: multipart/mixed\n"
        "[attachment: invoice.zip application/zip]\n"
        "[attachment: notes.txt text/plain]\n"
        "[attachment: image/gif]\n"
        "[attachment: offer.html text/html]\n"
        "[attachment: Brand New.htm application/octet-stream]\n"
        "[attachment: data.bin application/octet-stream]\n"
        "\n"
        "Please find the invoice attached.\n\nAttached notes.\n\nBuy now\n\nPremium"
    )
    assert stats.attachments == 6 and stats.text_parts == 4
    decoded = b"Please find the invoice attached.\nAttached notes.\n"
    decoded += b"<html><body><p>Buy <b>now</b></p></body></html>\n<p>Premium</p>"
    assert stats.bytes_decoded == len(decoded)


def test_attachment_names_are_decoded_from_rfc2231_and_rfc2047() -> None:
    parts = (
        b"--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf\r\n"
        b"\r\nJVBE\r\n"
        b'--B\r\nContent-Type: application/octet-stream; name="NAME"\r\n\r\nxx\r\n--B--\r\n'
    ).replace(b"NAME", encoded_word("счёт.exe", "koi8-r").encode())
    text = to_text(mail(parts, b"Content-Type: multipart/mixed; boundary=B"))
    assert "[attachment: Rechnung März.pdf application/pdf]" in text
    assert "[attachment: счёт.exe application/octet-stream]" in text


def test_forwarded_message_body_is_read() -> None:
    inner = b"From: x@example.net\r\nSubject: inner\r\n\r\nInner body text\r\n"
    raw = mail(b"--B\r\nContent-Type: text/plain\r\n\r\nSee below\r\n"
               b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--B--\r\n",
               b"Content-Type: multipart/mixed; boundary=B")  # fmt: skip
    assert to_text(raw).endswith("\n\nSee below\n\nInner body text")


# --- transfer encodings and charsets ---------------------------------------------------------


def test_base64_and_quoted_printable_bodies_are_decoded() -> None:
    b64 = base64.encodebytes("Grüße aus Köln\n".encode()).replace(b"\n", b"\r\n")
    raw = mail(b64, b"Content-Type: text/plain; charset=utf-8",
               b"Content-Transfer-Encoding: base64")  # fmt: skip
    assert to_text(raw).endswith("\n\nGrüße aus Köln")
    qp = b"Caf=E9 cr=E8me, a very long line that was soft-=\r\nwrapped here\r\n"
    raw = mail(qp, b"Content-Type: text/plain; charset=iso-8859-1",
               b"Content-Transfer-Encoding: quoted-printable")  # fmt: skip
    assert to_text(raw).endswith("\n\nCafé crème, a very long line that was soft-wrapped here")


SAMPLES = [
    ("utf-8", "Grüße aus Köln ✓"),
    ("iso-8859-1", "Café crème brûlée"),
    ("koi8-r", "Привет, мир"),
    ("shift_jis", "こんにちは世界"),
    ("gb2312", "你好世界"),
]


@pytest.mark.parametrize(("charset", "sample"), SAMPLES)
def test_rfc2047_subjects_and_8bit_bodies_in_each_charset(charset: str, sample: str) -> None:
    raw = (
        (
            f"From: {encoded_word(sample, charset)} <a@example.com>\r\n"
            f"Subject: Re: {encoded_word(sample, charset)}\r\n"
            f"Content-Type: text/plain; charset={charset}\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode()
        + sample.encode(charset)
        + b"\r\n"
    )
    text = to_text(raw)
    assert text.splitlines()[0] in (
        f"From: {sample} <a@example.com>",
        f'From: "{sample}" <a@example.com>',
    )
    assert f"Subject: Re: {sample}\n" in text
    assert text.endswith(f"\n\n{sample}")


def test_wrong_declared_charset_falls_back_without_crashing() -> None:
    ascii_utf8 = mail("naïve café".encode(), b"Content-Type: text/plain; charset=us-ascii")
    assert to_text(ascii_utf8).endswith("\n\nnaïve café")
    ascii_latin1 = mail("naïve café".encode("latin-1"), b"Content-Type: text/plain; charset=ascii")
    assert to_text(ascii_latin1).endswith("\n\nnaïve café")  # cp1252 is latin-1 here
    unknown = mail("Привет".encode(), b"Content-Type: text/plain; charset=x-unknown-charset")
    assert to_text(unknown).endswith("\n\nПривет")
    garbled = mail(b"ok \x81\x8d\x8f\x90\x9d", b"Content-Type: text/plain; charset=x-unknown")
    assert to_text(garbled).endswith("\n\nok \ufffd")  # a run of replacements collapses
    for charset in (b"rot13", b"base64", b"zlib", b"bz2", b"punycode", b"idna", b'"utf-8\x00"'):
        raw = mail(b"abc-def", b"Content-Type: text/plain; charset=" + charset)
        assert to_text(raw).endswith("\n\nabc-def"), charset


def test_undecodable_headers_give_replacement_characters() -> None:
    raw = (
        b"From: J\xfcrgen \xc3\xa9 <j@example.de>\r\n"
        b"Subject: =?x-unknown?q?abc=E9?= =?utf-8?q?Bad=ZZ?= caf\xe9 =?utf-8?b?!!!?=\r\n\r\nbody"
    )
    text = to_text(raw)
    assert_clean(text)
    assert text.startswith("From: J\ufffdrgen é <j@example.de>\nSubject: abc")


# --- budgets ---------------------------------------------------------------------------------


def big_base64(size: int) -> bytes:
    line = base64.b64encode(bytes(range(57))) + b"\r\n"  # 57 bytes decode from each 76-char line
    return line * (size // 57)


def test_20_mb_attachment_is_neither_decoded_nor_parsed_in_full() -> None:
    raw = mail(
        b"--B\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b"--B\r\nContent-Type: application/zip; name=big.zip\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + big_base64(20_000_000) + b"--B--\r\n",
        b"Content-Type: multipart/mixed; boundary=B",
    )
    assert len(raw) > 20_000_000
    text, stats = to_text_with_stats(raw)
    assert text.endswith("[attachment: big.zip application/zip]\n\nSee attached.")
    assert stats.raw_bytes <= DEFAULT_MAX_RAW_BYTES
    assert stats.bytes_decoded == len(b"See attached.")  # the CRLF belongs to the boundary
    assert stats.truncated


def test_20_mb_text_body_is_decoded_only_up_to_the_budget() -> None:
    raw = mail(big_base64(20_000_000), b"Content-Type: text/plain; charset=latin-1",
               b"Content-Transfer-Encoding: base64")  # fmt: skip
    text, stats = to_text_with_stats(raw)
    assert stats.bytes_decoded == DEFAULT_MAX_BYTES and stats.truncated
    assert_clean(text)
    _, small = to_text_with_stats(raw, max_bytes=1000, max_raw_bytes=50_000_000)
    assert small.bytes_decoded == 1000 and small.raw_bytes == len(raw)


@pytest.mark.parametrize("encoding", [b"7bit", b"quoted-printable", b"base64"])
def test_decoding_budget_is_shared_by_all_parts(encoding: bytes) -> None:
    chunk = b"spam and eggs " * 3000  # 42,000 bytes a part
    if encoding == b"base64":
        chunk = base64.encodebytes(chunk)
    part = b"--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: %s\r\n\r\n%s\r\n"
    parts = b"".join(part % (encoding, chunk) for _ in range(4)) + b"--B--\r\n"
    _, stats = to_text_with_stats(mail(parts, b"Content-Type: multipart/mixed; boundary=B"))
    assert stats.bytes_decoded == DEFAULT_MAX_BYTES and stats.truncated
    assert stats.text_parts == 2


def test_a_character_cut_by_the_budget_is_dropped_not_garbled() -> None:
    for charset in ("utf-8", "shift_jis", "utf-16"):
        body = ("é" if charset != "shift_jis" else "世") * 5000
        raw = mail(body.encode(charset), f"Content-Type: text/plain; charset={charset}".encode())
        text, stats = to_text_with_stats(raw, max_bytes=2001)
        assert stats.bytes_decoded == 2001 and stats.truncated
        assert set(text.split("\n\n", 1)[1]) == {body[0]}, charset


@pytest.mark.parametrize(
    "markup", [b"<a", b"<!--", b"<ul><li>", b"<blockquote>x<br>", b"&", b"<td>", b"[a](", b"["]
)
def test_hostile_markup_is_converted_in_bounded_work(markup: bytes) -> None:
    # Each of these once took html.parser, html2text or a regex quadratic time (tens of seconds).
    for ctype in (b"text/html", b"text/plain"):
        raw = mail(markup * (DEFAULT_MAX_BYTES // len(markup)), b"Content-Type: " + ctype)
        assert_clean(to_text(raw))


def test_many_and_deeply_nested_parts_are_bounded() -> None:
    nested = b"".join(b"Content-Type: multipart/mixed; boundary=%d\r\n\r\n--%d\r\n" % (i, i)
                      for i in range(5000))  # fmt: skip
    text, stats = to_text_with_stats(HEADER_BLOCK + nested + b"\r\ndeep\r\n")
    assert_clean(text)
    assert stats.truncated and stats.raw_bytes < 20_000
    flat = b"--B\r\n\r\nx\r\n" * 100_000
    text, stats = to_text_with_stats(mail(flat, b"Content-Type: multipart/mixed; boundary=B"))
    assert stats.truncated and stats.text_parts <= 200
    assert_clean(text)


def test_huge_hostile_header_is_parsed_only_in_part() -> None:
    # Unbounded, the email package spends minutes on this Content-Type (super-linear parsing).
    raw = mail(b"<p>hi</p>", b"Content-Type: text/html" + b" ;" * 300_000)
    assert to_text(raw).endswith("Content-Type: text/html\n\nhi")


# --- broken input ----------------------------------------------------------------------------


def test_mime_cut_mid_part_without_closing_boundary() -> None:
    raw = mail(b"--B\r\nContent-Type: text/plain\r\n\r\nFirst part\r\n"
               b"--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               + base64.b64encode(b"Second part, cut")[:-3],
               b"Content-Type: multipart/mixed; boundary=B")  # fmt: skip
    text, stats = to_text_with_stats(raw)
    assert text.endswith("\n\nFirst part\n\nSecond part, cu")
    assert stats.parser == "default"


def test_multipart_without_boundary_or_parts() -> None:
    for raw in (mail(b"just text", b"Content-Type: multipart/mixed"),
                mail(b"", b"Content-Type: multipart/mixed; boundary=B"),
                mail(b"--B\r\n", b"Content-Type: multipart/alternative; boundary=B")):  # fmt: skip
        assert_clean(to_text(raw))
    assert to_text(mail(b"just text", b"Content-Type: multipart/mixed")).endswith("\n\njust text")


def test_no_body_and_empty_input() -> None:
    assert to_text(HEADER_BLOCK) == "From: Jane Doe <jane@example.com>\nSubject: Lunch on Friday?"
    assert to_text(b"") == ""
    assert to_text(b"\r\n\r\n") == ""
    assert to_text(b"Subject: \r\n\r\n") == ""


def test_binary_garbage_returns_text() -> None:
    rng = random.Random(0)
    for size in (1, 100, 10_000, 300_000):
        text, stats = to_text_with_stats(rng.randbytes(size))
        assert_clean(text)
        assert stats.bytes_decoded <= DEFAULT_MAX_BYTES


def test_endoftext_passes_through_as_text() -> None:
    raw = mail(b"before <|endoftext|> after", b"X-Note: <|endoftext|>")
    raw = raw.replace(b"Subject: Lunch", b"Subject: <|endoftext|> Lunch")
    text = to_text(raw)
    assert "Subject: <|endoftext|> Lunch on Friday?" in text
    assert text.endswith("\n\nbefore <|endoftext|> after")


def test_mbox_from_line_is_ignored() -> None:
    raw = mail(b"hello\r\n")
    envelope = b"From jane@example.com Tue Sep  3 10:00:00 2002\r\n"
    assert to_text(envelope + raw) == to_text(raw)
    assert to_text(envelope.replace(b"\r\n", b"\n") + raw.replace(b"\r\n", b"\n")) == to_text(raw)


# --- determinism and text_from_parts ---------------------------------------------------------


def test_same_bytes_give_the_same_text_in_any_process() -> None:
    samples = [mail(b"hello <b>world</b> http://a.example/x", b"Content-Type: text/html"),
               random.Random(1).randbytes(5000), HEADER_BLOCK + ALTERNATIVE % b"Plain"]  # fmt: skip
    here = [to_text(raw) for raw in samples]
    assert here == [to_text(raw) for raw in samples]
    code = (
        "import json, sys\nfrom mailfilter.message import to_text\n"
        "print(json.dumps([to_text(bytes.fromhex(h)) for h in json.loads(sys.stdin.read())]))"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "LC_ALL": "C", "LANG": "C", "TZ": "Asia/Tokyo",
           "PYTHONPATH": str(root)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps([s.hex() for s in samples]),
                         capture_output=True, text=True, env=env, check=True, cwd=root)  # fmt: skip
    assert json.loads(out.stdout) == here


def test_text_from_parts_matches_to_text_of_the_same_message() -> None:
    msg = EmailMessage()
    msg["From"] = "Jane Doe <jane@example.com>"
    msg["Subject"] = "Cheap   meds\tnow"
    body = "Hello!\n\n\n\nVisit http://pills.example/buy?id=1  today.\n"
    msg.set_content(body)
    assert text_from_parts("Cheap   meds\tnow", body, "Jane Doe <jane@example.com>") == to_text(
        msg.as_bytes()
    )
    assert text_from_parts("", "only a body") == "only a body"
    assert text_from_parts("Hi", "") == "Subject: Hi"


printable = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=printable, body=printable)
def test_text_from_parts_matches_to_text_property(subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg.set_content(body, charset="utf-8")
    assert text_from_parts(subject, body) == to_text(msg.as_bytes())


def _clean_body_pass_by_pass(text: str) -> str:
    """`_clean_body` as its definition reads: every pass over the whole text, in order."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = M._MD_LINK.sub(M._link, text)
    text = re.sub(r"<?\b((?:https?|ftp)://[^\s<>\"'\]\[]+)>?", lambda m: M._host(m.group(1)),
                  text, flags=re.IGNORECASE)
    text = M._CONTROL.sub(" ", M._INVISIBLE.sub("", text))
    text = M._REPEATS.sub(lambda m: m.group(1) * 10, M._REPLACEMENTS.sub("\ufffd", text))
    lines = [M._SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return M._BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


_BODY_PIECES = st.sampled_from([
    "http://", "HTTPS://", "ftp://", "Ftp://", "<", ">", "<http://a.example/x>", "mailto:",
    "[", "]", "(", ")", "](", "[x](http://b.example/p)", "\ufffd", "\n", "\r", "\r\n", " ",
    "\t", "\x0b", "\u00a0", "\u200b", "\ud800", "!", "-", "=" * 12, "h", "f", "ſ", "K",
    "www.example.com", "word", "\u3000", "é",
])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_BODY_PIECES, st.text(max_size=5)), max_size=40))
def test_clean_body_skips_only_passes_that_cannot_match(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert M._clean_body(text) == _clean_body_pass_by_pass(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \n\r\t\x0b\x0cab!-<>:/hf.[]()\ufffd", max_size=60))
def test_clean_body_of_ascii_like_text_matches_its_definition(text: str) -> None:
    assert M._clean_body(text) == _clean_body_pass_by_pass(text)


# --- never raises ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_clean(to_text(raw))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_after_a_valid_header_block_never_raise(tail: bytes) -> None:
    assert_clean(to_text(HEADER_BLOCK + tail))
    assert_clean(to_text(HEADER_BLOCK + b"\r\n" + tail))


MIME_PIECES = [
    b"Content-Type: multipart/mixed; boundary=B",
    b"Content-Type: multipart/alternative; boundary=B",
    b"Content-Type: multipart/related; boundary=\"C\"", b"Content-Type: message/rfc822",
    b"Content-Type: text/html; charset=koi8-r", b"Content-Type: text/plain; charset=x-bad",
    b"Content-Type: text/plain; charset*=utf-8''%E2%82", b"Content-Type: application/zip; name=a",
    b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Disposition: attachment; filename*0*=utf-8''a%FF; filename*1=b",
    b"Subject: =?utf-8?b?w6k=?= =?gb2312?q?=C4=E3?=", b"From: \"A\\\" <a@b> ,, <@>",
    b"--B", b"--B--", b"--C", b"--C--", b"", b"<html><a href='http://x'>y</a><img src=z>",
    b"=E9=\r", b"w6nDqQ==", b"<|endoftext|>", b"\xff\xfe\x00", b"From x Mon Jan 1 00:00:00 2000",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(MIME_PIECES) | st.binary(max_size=20), max_size=40),
       st.sampled_from([b"\r\n", b"\n"]))  # fmt: skip
def test_mime_shaped_soup_never_raises(pieces: list[bytes], newline: bytes) -> None:
    text, stats = to_text_with_stats(HEADER_BLOCK + newline.join(pieces), max_chars=2000)
    assert_clean(text, max_chars=2000)
    assert stats.bytes_decoded <= DEFAULT_MAX_BYTES


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        (b'"Jane Doe" <jane@example.com>', "Jane Doe <jane@example.com>"),
        (b"jane@example.com (Jane Doe)", "Jane Doe <jane@example.com>"),
        (b"jane@example.com", "jane@example.com"),
        (b'a@example.com, "Doe, Jane" <j@example.com>', "a@example.com, Doe, Jane <j@example.com>"),
        (b"=?iso-8859-1?q?J=F6rg?= <j@example.de>", "J\u00f6rg <j@example.de>"),
        ("Jörg <j@example.de>".encode(), "J\u00f6rg <j@example.de>"),  # raw 8-bit UTF-8
        (b"undisclosed-recipients:;", "undisclosed-recipients:;"),  # no address: as it is
    ],
)
def test_sender_is_shown_as_name_and_address(header: bytes, shown: str) -> None:
    assert to_text(b"From: " + header + b"\r\nSubject: s\r\n\r\nbody\r\n").startswith(
        f"From: {shown}\nSubject: s\n"
    )
