"""Directories of raw RFC 822 files, one message per file, labeled by the directory they are in.

Two layouts: the SpamAssassin public corpus (`easy_ham/`, `easy_ham_2/`, `hard_ham/` are ham,
`spam/`, `spam_2/` are spam; each holds an upstream `cmds` file that is not a message) and a
generic root with `ham/` and `spam/` subdirectories.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from mailfilter.message import to_text
from training.corpora.example import HAM, SPAM, Example
from training.corpora.parallel import RawItem, to_examples
from training.corpora.sms import CorpusFormatError

log = logging.getLogger(__name__)

SPAMASSASSIN_DIRS: Mapping[str, int] = {
    "easy_ham": HAM,
    "easy_ham_2": HAM,
    "hard_ham": HAM,
    "spam": SPAM,
    "spam_2": SPAM,
}
HAM_SPAM_DIRS: Mapping[str, int] = {"ham": HAM, "spam": SPAM}
# Files that sit next to the messages but are not messages.
NOT_MESSAGES = frozenset({"cmds"})


def is_spamassassin_root(path: Path) -> bool:
    """True when path has a subdirectory only SpamAssassin has (easy_ham, hard_ham, spam_2, …)."""
    return any((path / name).is_dir() for name in SPAMASSASSIN_DIRS if name != "spam")


def is_ham_spam_root(path: Path) -> bool:
    """True when path has both a `ham/` and a `spam/` subdirectory."""
    return all((path / name).is_dir() for name in HAM_SPAM_DIRS)


def message_files(directory: Path) -> Iterator[Path]:
    """Message files under directory, sorted, recursing; skips dot-files, `cmds`, symlinked dirs."""
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or entry.name in NOT_MESSAGES:
            continue
        if entry.is_dir():
            if entry.is_symlink():
                log.warning("%s: symlinked directory, not followed", entry)
                continue
            yield from message_files(entry)
        elif entry.is_file():
            yield entry


def read_labeled_dirs(root: str | Path, labels: Mapping[str, int], *, corpus: str | None = None,
                      workers: int | None = None) -> Iterator[Example]:
    """Yield an Example for every file in root's labeled subdirectories; absent ones are skipped.

    `source` is `corpus/subdir/relative/path` (corpus defaults to root's name).
    """
    root = Path(root)
    present = [name for name in labels if (root / name).is_dir()]
    if not present:
        raise CorpusFormatError(f"{root}: has none of the subdirectories {', '.join(labels)}")
    items = _raw_files(root, {name: labels[name] for name in present},
                       corpus or root.resolve().name)
    return to_examples(items, to_text, workers)


def _raw_files(root: Path, labels: Mapping[str, int], corpus: str) -> Iterator[RawItem]:
    for name, label in labels.items():
        n = 0
        for file in message_files(root / name):
            yield file.read_bytes(), label, f"{corpus}/{file.relative_to(root).as_posix()}"
            n += 1
        log.debug("%s/%s: %d messages", corpus, name, n)


def read_spamassassin(root: str | Path, *, workers: int | None = None) -> Iterator[Example]:
    """Yield the SpamAssassin public corpus; sources read `spamassassin/easy_ham/00001.…`."""
    return read_labeled_dirs(root, SPAMASSASSIN_DIRS, corpus="spamassassin", workers=workers)


def read_ham_spam_dirs(root: str | Path, *, workers: int | None = None) -> Iterator[Example]:
    """Yield the RFC 822 files under root's `ham/` and `spam/` subdirectories."""
    root = Path(root)
    if not is_ham_spam_root(root):
        raise CorpusFormatError(f"{root}: expected both ham/ and spam/ subdirectories")
    return read_labeled_dirs(root, HAM_SPAM_DIRS, workers=workers)
