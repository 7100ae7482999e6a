"""One entry point for every labeled corpus: detect the format from the path, then read it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from training.corpora.enron import is_enron_archive, is_enron_dir, read_enron
from training.corpora.example import Example
from training.corpora.lingspam import lingspam_root, read_lingspam
from training.corpora.mailbox_folders import is_maildir, is_mbox
from training.corpora.rfc822_dirs import (
    is_ham_spam_root,
    is_spamassassin_root,
    read_ham_spam_dirs,
    read_spamassassin,
)
from training.corpora.sms import CorpusFormatError, read_sms_collection


class CorpusReader(Protocol):
    """A reader of one corpus format."""

    def __call__(self, path: Path, /, *, workers: int | None = None) -> Iterator[Example]: ...


def _read_sms(path: Path, *, workers: int | None = None) -> Iterator[Example]:
    return read_sms_collection(path)  # a few hundred KB of short texts: no workers needed


READERS: dict[str, CorpusReader] = {
    "sms": _read_sms,
    "enron": read_enron,
    "lingspam": read_lingspam,
    "spamassassin": read_spamassassin,
    "ham-spam-dirs": read_ham_spam_dirs,
}


def _looks_like_sms_tsv(path: Path) -> bool:
    with path.open("rb") as f:
        first = f.readline(4096)
    return first.startswith((b"ham\t", b"spam\t"))


def detect_format(path: str | Path) -> str:
    """The name of the reader for path (a key of READERS); CorpusFormatError when there is none."""
    path = Path(path)
    if not path.exists():
        raise CorpusFormatError(f"{path}: no such file or directory")
    if path.is_file():
        if is_enron_archive(path):
            return "enron"
        if _looks_like_sms_tsv(path):
            return "sms"
        if is_mbox(path):
            raise CorpusFormatError(f"{path}: an mbox has no labels; read it with read_mbox(path, "
                                    "label)")
        raise CorpusFormatError(f"{path}: not an SMS TSV (ham|spam<TAB>text) or .tar.gz archive")
    if is_spamassassin_root(path):
        return "spamassassin"
    if lingspam_root(path) is not None:
        return "lingspam"
    if is_enron_dir(path):
        return "enron"
    if is_ham_spam_root(path):
        return "ham-spam-dirs"
    if is_maildir(path):
        raise CorpusFormatError(f"{path}: a Maildir has no labels; read it with read_maildir(path, "
                                "label)")
    raise CorpusFormatError(f"{path}: unknown corpus layout (expected SpamAssassin dirs, partN/, "
                            "or ham/ + spam/)")


def read_corpus(path: str | Path, *, workers: int | None = None) -> Iterator[Example]:
    """Yield the labeled corpus at path, whatever its format (see detect_format).

    workers: processes converting mail to text (default: one per CPU, at most 8; 1 = serial).
    """
    path = Path(path)
    return READERS[detect_format(path)](path, workers=workers)
