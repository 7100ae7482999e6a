"""Labeled corpora with every message's raw bytes, for tools that read mail themselves.

`read_raw_corpus` yields the same Examples as `read_corpus` (same readers, same order, same
sources, same model text), each with the file as the corpus stores it and that file as an RFC 822
message: the file itself for directories of RFC 822 files; for Enron-Spam and Ling-Spam, whose
files are a `Subject:` line and a body, that line as the only header, a blank line, then the body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailfilter.message import to_text
from training.corpora import enron, lingspam, rfc822_dirs
from training.corpora.example import Example
from training.corpora.formats import detect_format
from training.corpora.parallel import RawItem, to_examples
from training.corpora.sms import CorpusFormatError
from training.corpora.subject_files import SUBJECT_PREFIX, subject_file_text


@dataclass(frozen=True)
class RawExample:
    """An Example with the bytes it was read from and those bytes as an RFC 822 message."""

    example: Example
    raw: bytes  # the file as the corpus stores it; `RawCorpus.to_text(raw) == example.text`
    message: bytes  # what a mail filter is given


@dataclass(frozen=True)
class RawCorpus:
    """A corpus read with its raw bytes, and the function that turned those bytes into text."""

    format: str
    examples: list[RawExample]
    to_text: Callable[[bytes], str]


def subject_file_message(data: bytes) -> bytes:
    """An RFC 822 message for a `Subject:` + body file: that line, a blank line, then the body.

    Line endings become LF (as the model text's do); a file without a subject line gets an empty
    `Subject:` header. The bytes are otherwise kept as they are, undecoded.
    """
    data = data.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    first, _, rest = data.partition(b"\n")
    if first[: len(SUBJECT_PREFIX)].lower() != SUBJECT_PREFIX.encode():
        return b"Subject: \n\n" + data.strip(b"\n") + b"\n"
    return first.rstrip() + b"\n\n" + rest.strip(b"\n") + b"\n"


def _identity(data: bytes) -> bytes:
    return data


def _raw_items(path: Path, fmt: str) -> Iterator[RawItem]:
    if fmt == "spamassassin":
        present = {k: v for k, v in rfc822_dirs.SPAMASSASSIN_DIRS.items() if (path / k).is_dir()}
        return rfc822_dirs._raw_files(path, present, "spamassassin")
    if fmt == "ham-spam-dirs":
        return rfc822_dirs._raw_files(path, rfc822_dirs.HAM_SPAM_DIRS, path.resolve().name)
    if fmt == "enron":
        return enron._raw_files(path) if path.is_dir() else enron._raw_members(path)
    if fmt == "lingspam":
        root = lingspam.lingspam_root(path)
        assert root is not None  # detect_format found it
        return lingspam._raw_files(lingspam.part_dirs(root))
    raise CorpusFormatError(f"{path}: {fmt} corpora hold no mail messages to read raw")


def read_raw_corpus(path: str | Path, *, workers: int | None = None) -> RawCorpus:
    """Read an RFC 822-directory, Enron-Spam or Ling-Spam corpus with each message's raw bytes."""
    path = Path(path)
    fmt = detect_format(path)
    items = list(_raw_items(path, fmt))
    rfc822 = fmt in ("spamassassin", "ham-spam-dirs")
    convert: Callable[[bytes], str] = to_text if rfc822 else subject_file_text
    as_message = _identity if rfc822 else subject_file_message
    examples = [
        RawExample(example=ex, raw=raw, message=as_message(raw))
        for (raw, _, _), ex in zip(items, to_examples(iter(items), convert, workers), strict=True)
    ]
    return RawCorpus(format=fmt, examples=examples, to_text=convert)
