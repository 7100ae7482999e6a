"""SpamAssassin-style verdict headers, added to and removed from raw bytes without re-serialising.

The `email` package can change bytes when it writes a message back (folding, line endings,
charsets), so the headers are spliced into the original bytes as whole lines: at the end of the
header block, in the message's own line ending style. `strip_our_headers(tag_message(raw, ...))`
returns `raw` byte for byte when `raw` carried none of our headers.
"""

from __future__ import annotations

TYPE_CHECKING = False  # the thin client imports this module: no typing, no dataclasses, no re
if TYPE_CHECKING:
    from mailfilter.verdict import Verdict

OUR_HEADERS = ("X-Spam-Flag", "X-Spam-Status", "X-Spam-Level", "X-Mailfilter-Score")
_OURS = frozenset(h.lower().encode() for h in OUR_HEADERS)
_NAME_BYTES = bytes(range(33, 127))  # a field name: printable ASCII without space (or colon)
_PREFIX_PARAM = b" prefix="
_MAX_PREFIX = 64


class HeaderError(Exception):
    """A configured header value (the subject prefix) cannot be written into mail."""


_version: list[str] = []


def mailfilter_version() -> str:
    """The installed mailfilter version, for `X-Spam-Status: ... version=`."""
    if not _version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _version.append(version("mailfilter"))
        except PackageNotFoundError:
            _version.append("0")
    return _version[0]


def field_name(line: bytes) -> bytes | None:
    """The name of the header field `line` starts, as written, or None when it starts none:
    `Name:` or `Name <blanks>:`, the name printable ASCII without spaces or colons. (Byte
    methods, not `re`: the thin client imports this module for every message.)"""
    colon = line.find(b":")
    name = line[:colon].rstrip(b" \t") if colon > 0 else b""
    if not name or name.translate(None, _NAME_BYTES):
        return None
    return name


def check_subject_prefix(prefix: str | None) -> str | None:
    """The prefix, if it is printable ASCII that fits on a header line; else HeaderError."""
    if prefix is None or prefix.strip() == "":
        return None
    prefix = prefix.strip()
    if len(prefix) > _MAX_PREFIX or not all(" " <= c <= "~" for c in prefix):
        raise HeaderError(
            f"subject_prefix must be printable ASCII of at most {_MAX_PREFIX} characters: "
            f"{prefix!r}"
        )
    return prefix


def _split_lines(raw: bytes) -> list[bytes]:
    """Lines split on LF only, each keeping its ending; they join back to `raw` exactly."""
    lines = raw.split(b"\n")
    out = [line + b"\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _header_end(lines: list[bytes]) -> tuple[int, bool]:
    """Index of the blank line that ends the header block, and whether there is one."""
    for i, line in enumerate(lines):
        if line in (b"\n", b"\r\n"):
            return i, True
    return len(lines), False


def _fields(lines: list[bytes], end: int) -> list[tuple[int, int, bytes | None]]:
    """(first line, end line, lower-case name or None) for each field in lines[:end]."""
    out: list[tuple[int, int, bytes | None]] = []
    i = 0
    while i < end:
        name = field_name(lines[i])
        j = i + 1
        if name is not None:
            while j < end and lines[j][:1] in (b" ", b"\t"):
                j += 1
        out.append((i, j, name.lower() if name is not None else None))
        i = j
    return out


def _subject_insert_at(line: bytes) -> int:
    """Offset in a Subject line just after `Subject:` and the blanks that follow it."""
    pos = line.index(b":") + 1
    while pos < len(line) and line[pos : pos + 1] in (b" ", b"\t"):
        pos += 1
    return pos


def _added_prefix(lines: list[bytes], fields: list[tuple[int, int, bytes | None]]) -> bytes | None:
    """The subject prefix our X-Mailfilter-Score header says we added, if any."""
    for first, _, name in fields:
        if name == b"x-mailfilter-score":
            value = lines[first].rstrip(b"\r\n")
            at = value.find(_PREFIX_PARAM)
            if at >= 0:
                return value[at + len(_PREFIX_PARAM) :]
    return None


def looks_like_message(raw: bytes) -> bool:
    """True when `raw` starts with a header field (after an optional From_ line), no NULs in it.
    (Offsets, not a split into lines: a scan calls this for every message.)"""
    head = raw[:65536]
    start = 0
    if head.startswith(b"From "):
        newline = head.find(b"\n")
        if newline < 0:
            return False
        start = newline + 1
    if start >= len(head):
        return False
    newline = head.find(b"\n", start)
    if field_name(head[start : newline + 1 if newline >= 0 else len(head)]) is None:
        return False
    return b"\0" not in head[start : _blank_line_at(head, start)]


def _blank_line_at(raw: bytes, start: int = 0) -> int:
    """Offset of the first empty line (LF or CRLF) that follows a line ending at or after
    `start`, or len(raw) when there is none."""
    ends = [i + 1 for i in (raw.find(b"\n\n", start), raw.find(b"\n\r\n", start)) if i >= 0]
    return min(ends, default=len(raw))


def strip_our_headers(raw: bytes) -> bytes:
    """Remove X-Spam-Flag/Status/Level and X-Mailfilter-Score, and a subject prefix we added."""
    head = raw[: _blank_line_at(raw)].lower()
    if not any(name in head for name in _OURS):  # none of ours anywhere in the header block
        return raw
    return _strip_by_fields(raw)


def _strip_by_fields(raw: bytes) -> bytes:
    """`strip_our_headers` without its fast path: field by field."""
    lines = _split_lines(raw)
    end, _ = _header_end(lines)
    fields = _fields(lines, end)
    prefix = _added_prefix(lines, fields)
    if prefix is None and not any(name in _OURS for _, _, name in fields):
        return raw
    kept: list[bytes] = []
    for first, last, name in fields:
        if name in _OURS:
            continue
        block = lines[first:last]
        if name == b"subject" and prefix is not None:
            at = _subject_insert_at(block[0])
            if block[0][at:].startswith(prefix + b" "):
                block = [block[0][:at] + block[0][at + len(prefix) + 1 :], *block[1:]]
            prefix = None  # only the first Subject ever gets one
        kept.extend(block)
    return b"".join(kept + lines[end:])


def spam_level(score: float, threshold: float) -> str:
    """Stars like SpamAssassin's: 5 or more exactly when score >= threshold, at most 10."""
    if score >= threshold:
        span = 1.0 - threshold
        extra = 5 if span <= 0 else int(5 * (score - threshold) / span)
        return "*" * min(10, 5 + extra)
    return "*" * min(4, int(5 * score / threshold)) if threshold > 0 else ""


def verdict_headers(verdict: Verdict, prefix_added: str | None = None) -> list[str]:
    """Our header lines (without line endings) for a verdict."""
    spam = verdict.is_spam
    tests = "MAILFILTER,USER_IN_WELCOMELIST" if verdict.welcomed else "MAILFILTER"
    status = (
        f"X-Spam-Status: {'Yes' if spam else 'No'}, score={verdict.score:.4f} "
        f"required={verdict.threshold:.4f} tests={tests} version={mailfilter_version()}"
    )
    score = (
        f"X-Mailfilter-Score: {verdict.score:.4f} model={verdict.model_id} verdict={verdict.label}"
    )
    if prefix_added:
        score += f" prefix={prefix_added}"
    lines = ["X-Spam-Flag: YES"] if spam else []
    # No stars for welcomed mail: sieve rules that file on `X-Spam-Level: *****` must not move it.
    level = "" if verdict.welcomed else spam_level(verdict.score, verdict.threshold)
    return [*lines, status, f"X-Spam-Level: {level}", score]


def tag_message(raw: bytes, verdict: Verdict, prefix: str | None = None) -> bytes:
    """`raw` with our old headers removed and fresh ones added at the end of the header block."""
    lines = _split_lines(strip_our_headers(raw))
    end, has_blank = _header_end(lines)
    fields = _fields(lines, end)
    eol = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
    # No body and an unterminated last line: go before that field so every line stays whole.
    whole = has_blank or not lines or lines[-1].endswith(b"\n")
    insert_at = end if whole else fields[-1][0]
    added: str | None = None
    if prefix and verdict.is_spam:
        added = _add_subject_prefix(lines, fields, prefix.encode("ascii"))
    ours = [h.encode("ascii") + eol for h in verdict_headers(verdict, added)]
    return b"".join(lines[:insert_at] + ours + lines[insert_at:])


def _add_subject_prefix(
    lines: list[bytes], fields: list[tuple[int, int, bytes | None]], prefix: bytes
) -> str | None:
    """Put `prefix ` in front of the first Subject (in `lines`), unless it is already there."""
    for first, last, name in fields:
        if name != b"subject":
            continue
        at = _subject_insert_at(lines[first])
        value = b" ".join(part.strip() for part in lines[first:last])
        value = value[value.index(b":") + 1 :].strip()
        if value.startswith(prefix):
            return None
        lines[first] = lines[first][:at] + prefix + b" " + lines[first][at:]
        return prefix.decode("ascii")
    return None
