"""The preprocessed text-file shape of Enron-Spam and Ling-Spam: a `Subject:` line, then the body.

These files are not RFC 822, so they reach the model through `mailfilter.message.text_from_parts`,
the same layout `to_text` gives a parsed message.
"""

from __future__ import annotations

from mailfilter.message import text_from_parts

SUBJECT_PREFIX = "subject:"


def decode_text(data: bytes) -> str:
    """Decode as UTF-8, falling back to latin-1 (which never fails); line endings become LF.

    The fallback is per file: a file that is not valid UTF-8 is read wholly as latin-1, so a
    stray 8-bit byte stays one character instead of turning into U+FFFD.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def split_subject(text: str) -> tuple[str, str]:
    """(subject, body) of `Subject: …` + body; a text without that first line is all body."""
    first, _, rest = text.partition("\n")
    if first[: len(SUBJECT_PREFIX)].lower() != SUBJECT_PREFIX:
        return "", text.strip()
    return first[len(SUBJECT_PREFIX):].strip(), rest.strip()


def subject_file_text(data: bytes) -> str:
    """Model text for the raw bytes of one `Subject:` + body file."""
    subject, body = split_subject(decode_text(data))
    return text_from_parts(subject, body)
