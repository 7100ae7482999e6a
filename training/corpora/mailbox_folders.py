"""A user's own mail as training data: Maildir folders (and their Maildir++ subfolders) and mbox
files, each labeled ham or spam by the caller.

Read-only: messages are read as raw bytes through the stdlib `mailbox` module and nothing is ever
written, locked or moved. (The stdlib opens an mbox file `rb+`, falling back to `rb` where it
may not write; it writes only on `flush()` with changes pending, and this module makes none.)
"""

from __future__ import annotations

import logging
import mailbox
from collections.abc import Collection, Iterator
from pathlib import Path

from mailfilter.message import to_text
from training.corpora.example import HAM, SPAM, Example
from training.corpora.parallel import RawItem, to_examples
from training.corpora.sms import CorpusFormatError

log = logging.getLogger(__name__)


def is_maildir(path: Path) -> bool:
    """True when path has the `cur/` and `new/` subdirectories of a Maildir."""
    return (path / "cur").is_dir() and (path / "new").is_dir()


def is_mbox(path: Path) -> bool:
    """True when path is a file that is empty or starts with an mbox `From ` line."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        head = f.read(5)
    return head in (b"", b"From ")


def _check_label(label: int) -> None:
    if label not in (HAM, SPAM):
        raise ValueError(f"label must be HAM ({HAM}) or SPAM ({SPAM}), not {label!r}")


def read_maildir(path: str | Path, label: int, *, subfolders: bool | Collection[str] = False,
                 workers: int | None = None) -> Iterator[Example]:
    """Yield every message in the Maildir's `cur/` and `new/` as an Example labeled `label`.

    `subfolders` adds Maildir++ subfolders: True for all of them, or a collection of names
    (`"Archive"` or `".Archive"`). Off by default, since a ham Maildir usually holds `.Junk`.
    """
    _check_label(label)
    path = Path(path)
    if not is_maildir(path):
        raise CorpusFormatError(f"{path}: not a Maildir (needs cur/ and new/)")
    root = mailbox.Maildir(path, factory=None, create=False)
    folders: list[str] = []
    if subfolders is True:
        folders = sorted(root.list_folders())
    elif subfolders:
        available = set(root.list_folders())
        folders = [name.lstrip(".") for name in subfolders]
        missing = [name for name in folders if name not in available]
        if missing:
            raise CorpusFormatError(f"{path}: no Maildir++ subfolder {', '.join(missing)}")
    items = _raw_maildirs(root, folders, label, f"maildir:{path.resolve().name}")
    return to_examples(items, to_text, workers)


def _raw_maildirs(root: mailbox.Maildir, folders: list[str], label: int,
                  source: str) -> Iterator[RawItem]:
    yield from _raw_maildir(root, label, source)
    for name in folders:
        yield from _raw_maildir(root.get_folder(name), label, f"{source}/.{name}")


def _raw_maildir(md: mailbox.Maildir, label: int, source: str) -> Iterator[RawItem]:
    n = 0
    for key in sorted(md.keys()):
        try:
            raw = md.get_bytes(key)
        except (KeyError, FileNotFoundError):
            log.info("%s/%s: moved or deleted while reading, skipped", source, key)
            continue
        yield raw, label, f"{source}/{key}"
        n += 1
    log.debug("%s: %d messages", source, n)


def read_mbox(path: str | Path, label: int, *, workers: int | None = None) -> Iterator[Example]:
    """Yield every message of an mbox file as an Example labeled `label`, in file order."""
    _check_label(label)
    path = Path(path)
    if not is_mbox(path):
        raise CorpusFormatError(f"{path}: not an mbox file (must start with 'From ')")
    return to_examples(_raw_mbox(path, label), to_text, workers)


def _raw_mbox(path: Path, label: int) -> Iterator[RawItem]:
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for i, key in enumerate(box.keys(), 1):
            # get_bytes leaves out the `From ` envelope line, which is not part of the message.
            yield box.get_bytes(key), label, f"mbox:{path.name}:{i}"
    finally:
        box.close()


def read_mail_folder(path: str | Path, label: int, *, subfolders: bool | Collection[str] = False,
                     workers: int | None = None) -> Iterator[Example]:
    """Yield a Maildir (directory) or an mbox (file), every message labeled `label`."""
    path = Path(path)
    if path.is_dir():
        return read_maildir(path, label, subfolders=subfolders, workers=workers)
    if subfolders:
        raise CorpusFormatError(f"{path}: subfolders apply to a Maildir, not an mbox file")
    return read_mbox(path, label, workers=workers)
