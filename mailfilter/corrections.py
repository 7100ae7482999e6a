"""Corrections: a message the user moved against our verdict is labeled by where they put it.

The state DB says where each scored message was left and what the model thought of it. A message
the model called spam that the user moved out of the spam folder is ham; one it let through that
the user moved into the spam folder is spam. Moves to and from Trash say nothing either way, and
neither does a move the model agreed with (it is only noted, so the next move is judged from
there). A message is matched to its record by content hash (our headers stripped), or, when its
bytes changed, by its Maildir unique name: a move keeps the file name before `,S=` and `:2,`.
A message that is in its recorded folder and another one too was copied, not moved: ignored.

`record_move` judges one file (the daemon calls it on a watch event in new/ or cur/);
`reconcile` walks a whole Maildir++ tree. Both store what they find as labels with source
`correction` and return them. Neither reads or writes anything but the state DB and the
message files they read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mailfilter.learning import model_text
from mailfilter.mailboxes import (
    INBOX,
    TRASH_FOLDERS,
    detect,
    folder_name,
    is_maildir,
    message_names,
)
from mailfilter.mailboxes import read_regular_file as read_file
from mailfilter.state import Label, Record, State, content_hash

log = logging.getLogger(__name__)

Place = Literal["spam", "ham", "trash"]
SOURCE = "correction"


@dataclass(frozen=True)
class Correction:
    """A message whose recorded verdict the user overruled by moving it."""

    content_hash: str
    label: str  # the user's: ham or spam
    verdict: str  # the model's
    model_id: str
    score: float
    was: str  # the Maildir++ folder the message was last seen in
    now: str  # the folder it is in now
    path: str
    new: bool  # False when the state DB already held this label

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return dict(vars(self))


@dataclass(frozen=True)
class Location:
    """Where a message file sits in a Maildir++ tree."""

    root: Path
    folder: str  # INBOX or .Name
    subdir: str  # new or cur
    name: str

    @property
    def path(self) -> Path:
        """The file."""
        base = self.root if self.folder == INBOX else self.root / self.folder
        return base / self.subdir / self.name

    @property
    def key(self) -> str:
        """The key a state record uses for a file that moved: `folder/subdir/name`."""
        return f"{self.folder}/{self.subdir}/{self.name}"


def unique_part(name: str) -> str:
    """The part of a Maildir file name that a move or a flag change keeps (before `,` or `:`)."""
    for i, c in enumerate(name):
        if c in ",:":
            return name[:i]
    return name


def place_of(folder: str, spam_folder: str) -> Place:
    """Whether a Maildir++ folder is the spam folder (or below it), Trash, or anything else."""

    def under(top: str) -> bool:
        return folder == top or folder.startswith(top + ".")

    if under(folder_name(spam_folder)):
        return "spam"
    return "trash" if any(under(t) for t in TRASH_FOLDERS) else "ham"


def move_label(was: Place, now: Place) -> str | None:
    """What a move says about a message: out of the spam folder is ham, into it is spam."""
    if was == "spam" and now == "ham":
        return "ham"
    if was == "ham" and now == "spam":
        return "spam"
    return None


def locate(path: Path) -> Location | None:
    """The Maildir++ root, folder, subdir and name of a message file; None outside a Maildir."""
    subdir, folder_dir = path.parent.name, path.parent.parent
    if subdir not in ("new", "cur") or not is_maildir(folder_dir):
        return None
    if folder_dir.name.startswith(".") and is_maildir(folder_dir.parent):
        return Location(folder_dir.parent, folder_dir.name, subdir, path.name)
    return Location(folder_dir, INBOX, subdir, path.name)


def recorded_folder(record: Record) -> str:
    """The folder a record says its message is in (a move or tag records `folder/subdir/name`)."""
    parts = record.key.split("/")
    return parts[0] if len(parts) == 3 else record.folder


def _recorded_name(record: Record) -> str:
    return record.key.rsplit("/", 1)[-1]


def _still_there(loc: Location, record: Record) -> bool:
    """True when a file with the record's unique name is still in the recorded folder (a copy)."""
    folder = recorded_folder(record)
    base = loc.root if folder == INBOX else loc.root / folder
    unique = unique_part(_recorded_name(record))
    for sub in ("cur", "new"):
        try:
            if any(unique_part(e.name) == unique for e in os.scandir(base / sub)):
                return True
        except OSError:
            continue
    return False


def _judge(
    state: State, record: Record, loc: Location, raw: bytes, spam_folder: str
) -> Correction | None:
    """Note where the message is now; label it when the move overrules the model."""
    was = recorded_folder(record)
    label = move_label(place_of(was, spam_folder), place_of(loc.folder, spam_folder))
    state.relocate(record.content_hash, loc.folder, loc.key)
    if label is None:
        return None
    digest = content_hash(raw)
    if label == record.verdict:  # the user agrees; only undo an earlier label saying otherwise
        earlier = state.label(digest)
        if earlier is None or earlier.label == label:
            return None
    stored = Label(
        digest, label, SOURCE, str(loc.path), model_text(raw), record.model_id, record.score
    )
    counts = state.add_labels([stored])
    new = bool(counts.added or counts.relabeled)
    log.info(
        "correction: %s moved from %s to %s: %s (model said %s)",
        loc.path, was, loc.folder, label, record.verdict,
    )  # fmt: skip
    return Correction(
        digest, label, record.verdict, record.model_id, record.score, was, loc.folder,
        str(loc.path), new,
    )  # fmt: skip


def record_move(state: State, path: Path, spam_folder: str = ".Junk") -> Correction | None:
    """Judge one message file that may have moved; a Correction when it overrules the model."""
    loc = locate(path)
    if loc is None:
        return None
    try:
        raw = read_file(path)
    except FileNotFoundError:  # moved again already: the next event will see it
        return None
    except OSError as e:
        log.warning("cannot read %s: %s", path, e.strerror or e)
        return None
    record = state.latest_record(content_hash(raw))
    if record is None:
        unique = unique_part(loc.name)
        named = [r for r in state.records_by_name(unique)
                 if unique_part(_recorded_name(r)) == unique]  # fmt: skip
        record = named[0] if named else None
    if record is None or recorded_folder(record) == loc.folder or _still_there(loc, record):
        return None
    return _judge(state, record, loc, raw, spam_folder)


def _walk(root: Path) -> Iterator[Location]:
    """Every message file of every folder of a Maildir++ tree (Junk and Trash included)."""
    mailbox = detect(root)
    for folder in mailbox.folders:
        for sub in ("new", "cur"):
            try:
                names = message_names(folder.path / sub)
            except OSError:
                continue
            for name in names:
                yield Location(mailbox.root, folder.name, sub, name)


def _same_root(mailbox: str, root: Path, cache: dict[str, bool]) -> bool:
    if mailbox not in cache:
        path = Path(mailbox)
        cache[mailbox] = path.is_dir() and root in (path.resolve(), path.resolve().parent)
    return cache[mailbox]


def reconcile(
    state: State, root: Path, spam_folder: str = ".Junk", deep: bool = False
) -> list[Correction]:
    """Every message under a Maildir++ root that was moved against its verdict, labeled.

    Files are matched to records by unique name, without reading them; only candidates are read.
    A file whose name no record knows is read and looked up by hash when it is in the spam folder
    (a message moved in with a new name), or anywhere with `deep`.
    """
    root = root.resolve()
    cache: dict[str, bool] = {}
    by_name: dict[str, Record] = {}
    for rec in state.records():  # oldest first: the newest record of a name wins
        if _same_root(rec.mailbox, root, cache):
            by_name[unique_part(_recorded_name(rec))] = rec
    locations: dict[str, list[Location]] = {}
    for loc in _walk(root):
        locations.setdefault(unique_part(loc.name), []).append(loc)
    found: list[Correction] = []
    for unique, locs in locations.items():
        record: Record | None = by_name.get(unique)
        if record is not None and any(loc.folder == recorded_folder(record) for loc in locs):
            continue  # where we left it (and any other copy is just that: a copy)
        for loc in locs:
            if record is None and not (deep or place_of(loc.folder, spam_folder) == "spam"):
                continue
            try:
                raw = read_file(loc.path)
            except OSError:
                continue
            known = record or state.latest_record(content_hash(raw))
            if known is None or recorded_folder(known) == loc.folder:
                continue
            if record is None and _still_there(loc, known):
                continue
            correction = _judge(state, known, loc, raw, spam_folder)
            if correction is not None:
                found.append(correction)
            break  # one move per message
    return found
