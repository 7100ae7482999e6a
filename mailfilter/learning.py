"""Learning from the user's own folders: `mailfilter learn --spam PATH --ham PATH`.

Each message becomes a label in the state DB: the content hash (our headers stripped, as the
scan records it), ham or spam, where it came from, and the model text (`message.to_text` of the
message without our headers: a subject prefix we added must not teach the model that it means
spam). The mail itself is only read, never changed, moved or locked longer than a read takes.

Paths may be a Maildir, a Maildir++ root (every folder but the spam folder and Trash, as a scan
reads it), one Maildir++ folder (`~/Maildir/.Junk`), an mbox file, a single RFC 822 file or a
directory of them (one message per file, as bogofilter -B reads them).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailfilter.headers import looks_like_message, strip_our_headers
from mailfilter.mailboxes import MailboxError, detect, is_maildir, iter_messages, read_regular_file
from mailfilter.message import to_text
from mailfilter.state import Label, State, content_hash

log = logging.getLogger(__name__)

LABELS = ("ham", "spam")
BATCH = 500  # labels per transaction


class LearnError(Exception):
    """A path to learn from is not a mailbox or message, or a label is not ham or spam."""


@dataclass
class LearnReport:
    """What `learn` read and stored, per label."""

    read: Counter[str] = field(default_factory=Counter)
    added: Counter[str] = field(default_factory=Counter)
    relabeled: Counter[str] = field(default_factory=Counter)  # known, with the other label before
    unchanged: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    conflicts: int = 0  # messages given both as spam and as ham in one call (kept as ham)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the --json output)."""
        return {
            "read": dict(self.read),
            "added": dict(self.added),
            "relabeled": dict(self.relabeled),
            "unchanged": dict(self.unchanged),
            "skipped": dict(self.skipped),
            "conflicts": self.conflicts,
        }


def model_text(raw: bytes) -> str:
    """The text a label stores: the model text of the message with our headers removed."""
    return to_text(strip_our_headers(raw))


def _files_in(directory: Path) -> Iterator[Path]:
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
            yield Path(entry.path)


def iter_raw(
    path: Path, spam_folder: str, on_skip: Callable[[str, str], None]
) -> Iterator[tuple[str, bytes]]:
    """(origin, raw bytes) of every message at `path`, whatever kind of mailbox it is."""
    if path.is_dir() and not is_maildir(path):
        files: Iterable[Path] = _files_in(path)
    elif path.is_file() and not _starts_like_mbox(path):
        files = [path]
    else:
        try:
            mailbox = detect(path)
        except MailboxError as e:
            raise LearnError(str(e)) from e

        def skip(where: str, reason: str, detail: str) -> None:
            on_skip(where, f"{reason}: {detail}")

        for ref in iter_messages(mailbox, skip, spam_folder):
            try:
                yield f"{mailbox.path}:{ref.folder}/{ref.key}", ref.read()
            except OSError as e:
                on_skip(f"{mailbox.path}:{ref.folder}/{ref.key}", e.strerror or str(e))
        return
    for file in files:
        try:
            yield str(file), read_regular_file(file)
        except OSError as e:
            on_skip(str(file), e.strerror or str(e))


def _starts_like_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(5) in (b"", b"From ")
    except OSError as e:
        raise LearnError(f"{path}: cannot read: {e.strerror or e}") from e


def read_labels(
    paths: Sequence[Path], label: str, spam_folder: str, report: LearnReport, source: str = "learn"
) -> Iterator[Label]:
    """A label for each message found at `paths` (unreadable and non-mail files are counted)."""
    if label not in LABELS:
        raise LearnError(f"label must be ham or spam, not {label!r}")
    for path in paths:
        if not path.exists():
            raise LearnError(f"{path}: no such file or directory")

        def on_skip(where: str, why: str) -> None:
            log.warning("skipped %s: %s", where, why)
            report.skipped["unreadable"] += 1

        for origin, raw in iter_raw(path, spam_folder, on_skip):
            if not looks_like_message(raw):
                log.info("skipped %s: not a mail message", origin)
                report.skipped["not a message"] += 1
                continue
            report.read[label] += 1
            yield Label(content_hash(raw), label, source, origin, model_text(raw))


def learn(
    state: State,
    spam: Sequence[Path] = (),
    ham: Sequence[Path] = (),
    spam_folder: str = ".Junk",
    source: str = "learn",
) -> LearnReport:
    """Label every message at `spam` as spam and at `ham` as ham, in the state DB.

    A message already labeled keeps its label unless this call gives it the other one (the user
    changed their mind). Given both as spam and as ham in this call, it is stored as ham.
    """
    report = LearnReport()
    given: dict[str, str] = {}  # content hash -> the label this call gives it
    batch: list[Label] = []

    def flush() -> None:
        counts = state.add_labels(batch)
        report.added.update(counts.added)
        report.relabeled.update(counts.relabeled)
        report.unchanged.update(counts.unchanged)
        batch.clear()

    for label, paths in (("ham", ham), ("spam", spam)):  # ham first: it wins a conflict
        for item in read_labels(paths, label, spam_folder, report, source):
            earlier = given.get(item.content_hash)
            if earlier is not None:
                report.conflicts += earlier != item.label
                continue
            given[item.content_hash] = item.label
            batch.append(item)
            if len(batch) >= BATCH:
                flush()
    flush()
    return report


def retrain_pending(state: State, min_labels: int, if_needed: bool = True) -> str | None:
    """None when a retrain has something to learn; else why it would be a no-op."""
    counts = state.label_counts()
    total = sum(counts.values())
    if total < min_labels:
        return f"{total} labels, fewer than the {min_labels} a retrain needs (--min-labels)"
    last = state.last_retrain()
    if if_needed and last is not None and last.label_seq >= state.label_seq():
        return f"no new labels since the last retrain ({last.outcome})"
    return None
