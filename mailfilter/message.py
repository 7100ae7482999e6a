"""Raw RFC 822 bytes → the text the classifier reads; training and scanning both call `to_text`.

Output format (stable: trained models depend on it)::

    From: Jane Doe <jane@example.com>
    Reply-To: offers@example.net
    Subject: Your invoice
    Content-Type: multipart/mixed
    [attachment: invoice.zip application/zip]

    Body text, whitespace collapsed, links shown as their host (example.com).

- Header lines come from a small fixed set, each omitted when absent or empty: `From` (display
  name and address, as `Name <addr>`), `Reply-To` (a reply address that differs from the
  sender is a classic spam trait), `Subject`, and the top-level `Content-Type` (type only, no
  parameters; omitted for `text/plain`, the RFC default, so plain mail costs no tokens).
  `To`/`Cc` say whose mailbox or list a message sat in, which in a corpus identifies the
  corpus, not spam; `Received`, `Message-ID`, `Date` and friends would let a model memorise a
  corpus's relays and time period.
- Attachment lines (name when known, MIME type) sit in the header block, not after the body, so
  they survive the tokenizer's truncation to the checkpoint's `max_length`. The text of
  `text/plain` and `text/html` attachments is read too, after the body (spam that sends its
  page as an attachment under an empty body must not look empty), and so is that of an
  untyped (`application/octet-stream`) attachment named `.htm`, `.html` or `.txt`; other
  content never is.
- Body: for `multipart/alternative` the `text/plain` part wins (HTML when it is empty); HTML,
  and a `text/plain` part that is an HTML document (it opens with `<html>`, `<!DOCTYPE html>`,
  `<head>` or `<body>`: spam sent pages so, for mail programs that sniff), goes through
  `html_text` (lxml: text, paragraphs as lines, images as their alt text; head,
  scripts, styles and comments dropped). Every URL, in
  plain text or HTML links, is replaced by its host name (`Click here (host)`): the host is spam
  signal, paths and tracking ids are noise. Whitespace runs and blank lines are collapsed.
- Budgets, so hostile mail costs bounded time: at most `max_raw_bytes` of input are parsed (and
  no more than MAX_MIME_LINES boundary/Content-Type lines), at most `max_bytes` bytes of body
  content are transfer-decoded in total (parts other than text never are), and the result is at most
  `max_chars` characters. `to_text_with_stats` reports what was decoded and cut.

A checkpoint may read this text in a form of its own (`models.tokenizer.TextForm`, in its
metadata: lower-cased, and/or without the `From`/`Reply-To` lines); the format here stays one.

`text_from_parts` renders corpora that are not RFC 822 (a subject and a body) in the same format.
The functions never raise: mail the `email` package cannot handle is re-parsed with `compat32`,
then read as plain text.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import logging
import quopri
import re
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32, EmailPolicy
from email.utils import getaddresses
from itertools import islice
from typing import Any

from mailfilter.html_text import html_to_text

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024  # transfer-decoded body bytes, all parts together
DEFAULT_MAX_RAW_BYTES = 1024 * 1024  # prefix of the raw message that is parsed at all
DEFAULT_MAX_CHARS = 16_000  # the model reads a few hundred tokens; this is plenty
MAX_HEADER_CHARS = 200
MAX_RAW_HEADER_CHARS = 1_000  # header parsing is super-linear on hostile input
MAX_ATTACHMENTS = 20
MAX_HTML_CHARS = 32 * 1024  # HTML read per part; the model reads a few hundred tokens
MAX_MIME_LINES = 256  # the parser costs ~0.3 ms a part, ~2 ms a multipart: bound the parts
MAX_PARTS = 200
MAX_DEPTH = 20
SLOW_CODECS = ("punycode", "idna")  # quadratic decoders, never a mail charset
HEADERS = ("From", "Reply-To", "Subject")
ADDRESS_HEADERS = ("From", "Reply-To")
READ_ATTACHMENTS = ("text/plain", "text/html")  # listed, and their text read after the body
NAMED_TEXT_ATTACHMENTS = {"htm": "text/html", "html": "text/html", "txt": "text/plain"}

# What the email package raises on hostile input (parser and header-registry bugs included).
# Only exception type names are logged: messages would put mail content into the logs.
EMAIL_ERRORS = (
    *(email_errors.MessageError, LookupError, ValueError, IndexError, AttributeError),
    *(TypeError, UnicodeError, AssertionError, RecursionError),
)

_CTYPE = re.compile(r"[a-z0-9][a-z0-9!#$&.+^_-]*/[a-z0-9][a-z0-9!#$&.+^_-]*")
_UNIX_FROM = re.compile(rb"\AFrom [^\n]*\n")
_MIME_LINE = re.compile(rb"^(?:--|content-type:)", re.IGNORECASE | re.MULTILINE)
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u00a0\t]")
_SPACES = re.compile(r"[ \t\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_LINE_EDGES = re.compile(r" ?\n ?")  # after _SPACES: a line's leading and trailing space
_REPLACEMENTS = re.compile("\ufffd{2,}")
_REPEATS = re.compile(r"([^\w\s])\1{9,}")
_MD_LINK = re.compile(r"\[([^\[\]\n]{0,500})\]\(([^()\s]{0,2000})(?: \"[^\"\n]{0,500}\")?\)")
# The lookahead only names the characters a match can start with: it lets the regex engine
# skip ahead instead of trying every position (2x faster on mail; same matches).
_URL = re.compile(r"(?=[<hf])<?\b((?:https?|ftp)://[^\s<>\"'\]\[]+)>?", re.IGNORECASE)
_URL_HOST = re.compile(r"\A[a-z][a-z0-9+.-]*://(?:[^/@\s]*@)?\[?([^/:?#\s\]]+)", re.IGNORECASE)
_MAILTO_HOST = re.compile(r"\Amailto:[^@?]*@([^?&>\s]+)", re.IGNORECASE)
# A "text/plain" part that is an HTML document (spam did this so that some mail programs
# would render it): it opens, after white space and comments, with one of these tags.
_HTML_DOCUMENT = re.compile(
    r"\A\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL
)
HTML_SNIFF_CHARS = 2048  # how much of a plain part's start is searched for that opening


@functools.lru_cache(maxsize=4096)
def _parse_header(name: str, value: str) -> Any:
    """`policy.default`'s parse of one header, memoised: the parser and `_visit` ask for a
    part's Content-Type several times, and the header registry re-parses it on every call
    (about half of `to_text`'s time before this cache). Parsed headers are immutable."""
    return policy.default.header_fetch_parse(name, value[:MAX_RAW_HEADER_CHARS])


class _BoundedPolicy(EmailPolicy):
    """`policy.default` that parses at most MAX_RAW_HEADER_CHARS of a header (memoised)."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):  # already a parsed header object
            return value
        return _parse_header(name, value)


class _BoundedCompat32(Compat32):
    """`policy.compat32` that returns at most MAX_RAW_HEADER_CHARS of a header."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        return super().header_fetch_parse(name, value[:MAX_RAW_HEADER_CHARS])


_POLICIES = (("default", _BoundedPolicy()), ("compat32", _BoundedCompat32()))


@dataclass(frozen=True)
class TextStats:
    """What one conversion looked at, decoded and cut."""

    raw_bytes: int  # bytes of the input that were parsed (<= max_raw_bytes)
    bytes_decoded: int  # body bytes transfer-decoded, all parts together (<= max_bytes)
    text_parts: int  # text/plain or text/html parts that contributed body text
    attachments: int  # non-body parts seen (listed up to MAX_ATTACHMENTS)
    truncated: bool  # the input, the decoding budget or the character cap cut something
    parser: str  # "default", "compat32" or "raw" (no MIME parse at all)


@dataclass
class _Walk:
    """Mutable state of one conversion: the decoding budget and what was found."""

    budget: int
    decoded: int = 0
    parts: int = 0
    text_parts: int = 0
    attachment_count: int = 0
    truncated: bool = False
    bodies: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)

    def take(self, data: bytes, more: bool) -> bytes:
        """Charge `data` to the budget; `more` says the part had content beyond `data`."""
        left = self.budget - self.decoded
        if more or len(data) > left:
            self.truncated = True
        data = data[: max(0, left)]
        self.decoded += len(data)
        return data

    def stats(self, raw_bytes: int, truncated: bool, parser: str) -> TextStats:
        """The frozen summary of this walk."""
        return TextStats(
            raw_bytes, self.decoded, self.text_parts, self.attachment_count,
            truncated or self.truncated, parser,
        )  # fmt: skip


def to_text(
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """The model text for one raw message; deterministic, bounded, never raises."""
    return to_text_with_stats(
        raw, max_bytes=max_bytes, max_raw_bytes=max_raw_bytes, max_chars=max_chars
    )[0]


def to_text_with_stats(
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> tuple[str, TextStats]:
    """`to_text` plus what it parsed, decoded and cut, for tests and benchmarks."""
    data = _UNIX_FROM.sub(b"", bytes(raw[: max(0, max_raw_bytes)]), count=1)
    cut = len(raw) > max_raw_bytes
    excess = next(islice(_MIME_LINE.finditer(data), MAX_MIME_LINES, None), None)
    if excess:
        data, cut = data[: excess.start()], True
    budget = max(0, max_bytes)
    for name, pol in _POLICIES:
        walk = _Walk(budget)
        try:
            msg = BytesParser(policy=pol).parsebytes(data)
            headers = _header_lines(msg)
            _visit(msg, walk, 0)
        except EMAIL_ERRORS as e:
            logger.debug("%s policy cannot read message: %s", name, type(e).__name__)
            continue
        text, over = _render(headers, walk.attachments, "\n\n".join(walk.bodies), max_chars)
        return text, walk.stats(len(data), cut or over, name)
    walk = _Walk(budget)
    _add_body(walk, _decode(walk.take(data, False), None))
    text, over = _render([], [], "".join(walk.bodies), max_chars)
    return text, walk.stats(len(data), cut or over, "raw")


def text_from_parts(
    subject: str,
    body: str,
    sender: str = "",
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """The `to_text` format for a plain-text message with just this sender, subject and body."""
    headers = [("From", _clean_header(sender)), ("Subject", _clean_header(subject))]
    data = body.encode("utf-8", "surrogateescape")[: max(0, max_bytes)]
    text = _clean_body(_plain_text(_decode(data, "utf-8")))
    return _render([(k, v) for k, v in headers if v], [], text, max_chars)[0]


def _render(
    headers: list[tuple[str, str]], attachments: list[str], body: str, max_chars: int
) -> tuple[str, bool]:
    """Header block with attachment lines, blank line, body; cut to `max_chars`."""
    head = "\n".join([f"{k}: {v}" for k, v in headers] + attachments)
    text = f"{head}\n\n{body}" if head and body else head or body
    return text[: max(0, max_chars)].rstrip(), len(text) > max_chars


def _header_lines(msg: Message) -> list[tuple[str, str]]:
    """The kept headers, RFC 2047-decoded, cleaned, in HEADERS order, then the Content-Type."""
    raw: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = name.strip().title()
        if key in HEADERS and isinstance(value, str):
            raw.setdefault(key, value[:MAX_RAW_HEADER_CHARS])
    lines = [(key, _clean_header(_decode_header(key, raw[key]))) for key in HEADERS if key in raw]
    ctype = _content_type(msg)
    if ctype != "text/plain":
        lines.append(("Content-Type", ctype))
    return [(key, value) for key, value in lines if value]


def _content_type(part: Message) -> str:
    """`maintype/subtype`, lower-cased; `text/plain` when missing or malformed."""
    m = _CTYPE.match(part.get_content_type())
    return m.group(0) if m else "text/plain"


def _decode_header(name: str, value: str) -> str:
    """A raw header value as text. With RFC 2047 encoded words, the default policy's parse
    (addresses as `Name <addr>`); without, addresses through `getaddresses` in the same form
    (the policy's parse costs ~0.2 ms an address header, this ~15 us) and anything else as
    it is; 8-bit bytes are read as UTF-8."""
    if "=?" in value:
        try:
            return str(_parse_header(name, value))
        except EMAIL_ERRORS as e:
            logger.debug("cannot decode header %s: %s", name, type(e).__name__)
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if name in ADDRESS_HEADERS:
        try:
            pairs = getaddresses([text])
        except EMAIL_ERRORS as e:
            logger.debug("cannot parse addresses in %s: %s", name, type(e).__name__)
            return text
        shown = [f"{n} <{a}>" if n and a else n or a for n, a in pairs]
        return ", ".join(s for s in shown if s) or text
    return text


def _clean_header(value: str) -> str:
    """One line, no control characters, collapsed spaces, capped length."""
    value = _CONTROL.sub(" ", _INVISIBLE.sub("", value.replace("\r", " ").replace("\n", " ")))
    value = _REPLACEMENTS.sub("\ufffd", _SPACES.sub(" ", value)).strip()
    return value[:MAX_HEADER_CHARS].rstrip()


def _visit(part: Message, walk: _Walk, depth: int) -> None:
    """Collect body text and attachment names from `part` and below, within the budgets."""
    walk.parts += 1
    if walk.parts > MAX_PARTS or depth > MAX_DEPTH:
        walk.truncated = True
        return
    ctype = _content_type(part)
    maintype, _, subtype = ctype.partition("/")
    if part.is_multipart():  # get_payload() of a leaf would charset-decode all of it
        children = [p for p in part.get_payload() if isinstance(p, Message)]
        if maintype == "message" and subtype != "rfc822":
            _list_attachment(part, ctype, walk)
            return
        if subtype == "alternative":  # the first plain part with text, else the richest part
            plain = [p for p in children if _content_type(p) == "text/plain"][:1]
            children = plain + [p for p in reversed(children) if p not in plain]
        for child in children:
            found = walk.text_parts
            _visit(child, walk, depth + 1)
            if subtype == "alternative" and walk.text_parts > found:
                break
        return
    if part.get_content_disposition() == "attachment" or maintype not in ("text", "multipart"):
        read_as = _readable_type(ctype, _list_attachment(part, ctype, walk))
        if read_as is None:
            return
        subtype = read_as.partition("/")[2]
    if subtype == "html":
        _add_body(walk, _html_to_text(_decode_part(part, walk)))
    elif maintype == "multipart" or subtype in ("plain", "enriched"):
        _add_body(walk, _plain_text(_decode_part(part, walk)))
    else:
        _list_attachment(part, ctype, walk)


def _plain_text(text: str) -> str:
    """A plain part's text as read: as it is, or through `html_text` when it is in fact an HTML
    document (`<html>`, `<!DOCTYPE html>`, … first; the anchored match gives up at the first
    other character, and the slice bounds a run of unclosed comments)."""
    return _html_to_text(text) if _HTML_DOCUMENT.match(text[:HTML_SNIFF_CHARS]) else text


def _add_body(walk: _Walk, text: str) -> None:
    text = _clean_body(text)
    if text:
        walk.bodies.append(text)
        walk.text_parts += 1


def _list_attachment(part: Message, ctype: str, walk: _Walk) -> str:
    """Record `[attachment: name type]` (the first MAX_ATTACHMENTS); return the name."""
    walk.attachment_count += 1
    try:
        name = part.get_filename() or ""
    except EMAIL_ERRORS as e:
        logger.debug("cannot read attachment name: %s", type(e).__name__)
        name = ""
    name = _clean_header(str(name))[:80]
    if len(walk.attachments) < MAX_ATTACHMENTS:
        line = f"[attachment: {name} {ctype}]" if name else f"[attachment: {ctype}]"
        walk.attachments.append(line)
    return name


def _readable_type(ctype: str, name: str) -> str | None:
    """The text type an attachment is read as: its own when it is text/plain or text/html,
    the one its file name says when it is untyped (application/octet-stream); else None."""
    if ctype in READ_ATTACHMENTS:
        return ctype
    if ctype == "application/octet-stream":
        return NAMED_TEXT_ATTACHMENTS.get(name.lower().rpartition(".")[2])
    return None


def _decode_part(part: Message, walk: _Walk) -> str:
    """Transfer-decode at most the remaining budget of this part, then charset-decode it."""
    # get_payload() charset-decodes the whole part (any codec, punycode included) and
    # get_payload(decode=True) transfer-decodes all of it; without a Content-Transfer-Encoding
    # the latter hands over the raw bytes, of which we decode a budgeted prefix ourselves.
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    del part["Content-Transfer-Encoding"]
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    left = walk.budget - walk.decoded
    if left <= 0:
        walk.truncated = walk.truncated or bool(raw.strip())
        return ""
    if cte == "base64":  # 4 characters make 3 bytes; allow for line breaks and junk
        need = (left + 2) // 3 * 4
        prefix = raw[: need + need // 8 + 4096]
        chars = _B64_JUNK.sub(b"", prefix)
        more = len(raw) > len(prefix) or len(chars) > need
        chars = chars[:need]
        chars = chars[: len(chars) - 1] if len(chars) % 4 == 1 else chars
        data = binascii.a2b_base64(chars + b"=" * (-len(chars) % 4))
    elif cte == "quoted-printable":  # at most 3 characters a byte; cut on a line end
        prefix = raw[: left * 3 + 3]
        more = len(raw) > len(prefix)
        if more and b"\n" in prefix:
            prefix = prefix[: prefix.rindex(b"\n") + 1]
        data = quopri.decodestring(prefix)
    else:  # 7bit, 8bit, binary
        data = raw[:left]
        more = len(raw) > left
    return _decode(walk.take(data, more), part.get_content_charset())


def _decode(data: bytes, charset: str | None) -> str:
    """Declared charset, else UTF-8, else cp1252 with replacement characters; a character cut
    in two at the end (by a budget) is dropped rather than a reason to fall back."""
    for name in (charset or "utf-8", "utf-8"):
        try:
            info = codecs.lookup(name.strip())
            # bytes.decode's own test: zlib, bz2, base64, rot13 are codecs but not charsets
            if getattr(info, "_is_text_encoding", False) and info.name not in SLOW_CODECS:
                return info.incrementaldecoder().decode(data, final=False)
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue
    return data.decode("cp1252", "replace")


def _html_to_text(markup: str) -> str:
    """Readable text from at most MAX_HTML_CHARS of HTML, links shown with their host."""
    return html_to_text(markup[:MAX_HTML_CHARS], _host)


def _host(url: str) -> str:
    """The lower-cased host of a URL or mailto: link, or "" when it has none."""
    m = _URL_HOST.match(url) or _MAILTO_HOST.match(url)
    return m.group(1).lower() if m else ""


def _link(m: re.Match[str]) -> str:
    text, host = m.group(1).strip(), _host(m.group(2))
    return f"{text} ({host})" if text and host else text or (f"({host})" if host else "")


def _clean_body(text: str) -> str:
    """Hosts instead of URLs, no control characters, single spaces, at most one blank line."""
    # The `in` tests skip passes that cannot match (a scan of the text costs far less than a
    # regex pass); a scanned message's text is made in the scan's critical path.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "](" in text:
        text = _MD_LINK.sub(_link, text)
    if "://" in text:
        text = _URL.sub(lambda m: _host(m.group(1)), text)
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", text))
    if "\ufffd\ufffd" in text:
        text = _REPLACEMENTS.sub("\ufffd", text)
    text = _REPEATS.sub(lambda m: m.group(1) * 10, text)
    text = _SPACES.sub(" ", text)
    if text.isascii():  # its only whitespace left is " " and "\n": strip each line by regex
        text = _LINE_EDGES.sub("\n", text)
    else:  # str.strip also strips Unicode spaces
        text = "\n".join([line.strip() for line in text.split("\n")])
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()
