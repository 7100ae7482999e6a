"""Mailboxes: a Maildir, a Maildir++ tree of `.Folder`s, or an mbox file, read as message refs.

A Maildir message is read only when asked for. An mbox is read under its lock (dotlock + fcntl,
see `mboxlock`) a few megabytes at a time, releasing the lock in between so deliveries are not
held up for the length of a scan; if the file was replaced or shrunk meanwhile, the rest of it
waits for the next scan.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mailfilter.mboxlock import MboxLock, MboxLockError

log = logging.getLogger(__name__)

Kind = Literal["maildir", "mbox"]
INBOX = "INBOX"
TRASH_FOLDERS = (".Trash", ".Deleted Messages", ".Deleted Items")
READ_BUDGET = 16 << 20  # bytes of mbox read per lock hold
_FROM_LINE = re.compile(rb"\n\r?\n(?=From )")  # a From_ line after a blank line

# Called as on_skip(where, category, detail) for anything that cannot be read at all.
SkipSink = Callable[[str, str, str], None]


class MailboxError(Exception):
    """A path is not a Maildir, Maildir++ folder tree or mbox file."""


@dataclass(frozen=True)
class MaildirFolder:
    """One Maildir (cur/new/tmp) and its Maildir++ name: INBOX for the root, `.Name` below it."""

    path: Path
    name: str


@dataclass(frozen=True)
class Mailbox:
    """A mailbox given on the command line; `root` is where a Maildir's spam folder goes."""

    path: Path
    kind: Kind
    root: Path
    folders: tuple[MaildirFolder, ...] = ()


@dataclass(kw_only=True)
class MessageRef:
    """One message in a mailbox; `key` names it inside its folder."""

    mailbox: Mailbox
    folder: str
    key: str
    flags: str = ""

    def read(self) -> bytes:
        """The message's raw bytes."""
        raise NotImplementedError


@dataclass(kw_only=True)
class MaildirMessage(MessageRef):
    """A file in a Maildir folder's new/ or cur/; `flags` are the letters after `:2,`."""

    folder_path: Path
    subdir: str
    name: str
    read_stat: tuple[int, int] | None = field(default=None, repr=False)  # (size, mtime_ns)

    @property
    def path(self) -> Path:
        """The message file."""
        return self.folder_path / self.subdir / self.name

    def read(self) -> bytes:
        """Read the file; anything but a regular file is an OSError (never blocks on a FIFO).
        Remembers the size and mtime it read, so a rewrite can check nothing changed since."""
        data, st = read_regular_file_stat(self.path)
        self.read_stat = (st.st_size, st.st_mtime_ns)
        return data


@dataclass(kw_only=True)
class MboxMessage(MessageRef):
    """A message of an mbox, read under the lock: its offset and bytes (without the From_ line)."""

    offset: int
    data: bytes = field(repr=False)

    def read(self) -> bytes:
        """The bytes read under the lock."""
        return self.data


def read_regular_file(path: Path) -> bytes:
    """A regular file's bytes; a directory, FIFO or device raises OSError instead of hanging."""
    return read_regular_file_stat(path)[0]


def read_regular_file_stat(path: Path) -> tuple[bytes, os.stat_result]:
    """`read_regular_file` and the file's stat as it was opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with open(fd, "rb", closefd=False) as f:
            return f.read(), st
    finally:
        os.close(fd)


def is_maildir(path: Path) -> bool:
    """A directory with cur/ and new/ (tmp/ is created when needed)."""
    return (path / "cur").is_dir() and (path / "new").is_dir()


def maildir_flags(name: str) -> str:
    """The flag letters of a Maildir file name (`…:2,FS` → `FS`)."""
    _, sep, flags = name.partition(":2,")
    return flags if sep else ""


def folder_name(name: str) -> str:
    """A user's folder name as Maildir++ spells it: INBOX, or a leading dot."""
    if name.upper() == INBOX or name in ("", "."):
        return INBOX
    return name if name.startswith(".") else "." + name


def detect(path: Path) -> Mailbox:
    """What kind of mailbox `path` is; MailboxError when it is none."""
    try:
        if path.is_dir():
            if not is_maildir(path):
                raise MailboxError(f"{path}: a directory, but not a Maildir (no cur/ and new/)")
            if path.name.startswith(".") and is_maildir(path.parent):  # one Maildir++ folder
                return Mailbox(path, "maildir", path.parent, (MaildirFolder(path, path.name),))
            subs = sorted(
                (c for c in path.iterdir() if c.name.startswith(".") and is_maildir(c)),
                key=lambda c: c.name,
            )
            folders = (MaildirFolder(path, INBOX), *(MaildirFolder(c, c.name) for c in subs))
            return Mailbox(path, "maildir", path, folders)
        if path.is_file():
            real = Path(os.path.realpath(path))  # rewrite the file, not a symlink to it
            with open(real, "rb") as f:
                head = f.read(5)
            if head not in (b"", b"From "):
                raise MailboxError(f"{path}: not an mbox (it does not start with 'From ')")
            return Mailbox(real, "mbox", real)
    except OSError as e:
        raise MailboxError(f"{path}: cannot read: {e.strerror or e}") from e
    if not path.exists():
        raise MailboxError(f"{path}: no such file or directory")
    raise MailboxError(f"{path}: not a Maildir or mbox file")


def _under(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def select_folders(
    mailbox: Mailbox, spam_folder: str, wanted: Sequence[str] = ()
) -> list[MaildirFolder]:
    """The folders to scan: those `wanted`, else all but the spam folder and Trash."""
    if wanted:
        names = {folder_name(w) for w in wanted}
        return [f for f in mailbox.folders if f.name in names]
    if mailbox.path != mailbox.root:  # a folder named on the command line is scanned as asked
        return list(mailbox.folders)
    skip = (folder_name(spam_folder), *TRASH_FOLDERS)
    return [f for f in mailbox.folders if not any(_under(f.name, s) for s in skip)]


def message_names(directory: Path) -> list[str]:
    """Message file names in a Maildir `new/` or `cur/`, sorted, dot-files left out."""
    return sorted(e.name for e in os.scandir(directory) if not e.name.startswith("."))


def iter_messages(
    mailbox: Mailbox,
    on_skip: SkipSink,
    spam_folder: str = ".Junk",
    wanted: Sequence[str] = (),
    lock_timeout: float = 60.0,
) -> Iterator[MessageRef]:
    """Every message of a mailbox, new/ before cur/, in name order."""
    if mailbox.kind == "mbox":
        yield from _iter_mbox(mailbox, on_skip, lock_timeout)
        return
    for folder in select_folders(mailbox, spam_folder, wanted):
        for sub in ("new", "cur"):
            try:
                names = message_names(folder.path / sub)
            except FileNotFoundError:
                continue
            except OSError as e:
                on_skip(f"{folder.path / sub}", "unreadable", e.strerror or str(e))
                continue
            for name in names:
                yield MaildirMessage(
                    mailbox=mailbox,
                    folder=folder.name,
                    key=f"{sub}/{name}",
                    flags=maildir_flags(name),
                    folder_path=folder.path,
                    subdir=sub,
                    name=name,
                )


def message_starts(buf: bytes) -> list[int]:
    """Offsets of the From_ lines in `buf` (at its start or after a blank line)."""
    starts = [0] if buf.startswith(b"From ") else []
    starts.extend(m.end() for m in _FROM_LINE.finditer(buf))
    return starts


def split_entry(entry: bytes) -> tuple[bytes, bytes, bytes]:
    """An mbox entry as (From_ line, message, separator); the three join back to `entry`."""
    nl = entry.find(b"\n")
    if nl < 0:
        return entry, b"", b""
    head, rest = entry[: nl + 1], entry[nl + 1 :]
    if rest.endswith(b"\n\r\n") or rest == b"\r\n":
        return head, rest[:-2], rest[-2:]
    if rest.endswith(b"\n\n") or rest == b"\n":
        return head, rest[:-1], rest[-1:]
    return head, rest, b""


def iter_entries(
    fd: int, start: int, size: int, budget: int = READ_BUDGET
) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of each piece of an mbox read through `fd` from `start` to `size`.

    Pieces are entries (a From_ line up to the next one) and, only at offset 0, whatever precedes
    the first From_ line; the pieces join back to the file exactly.
    """
    pos, buf = start, b""
    while True:
        want = min(budget, size - pos - len(buf))
        chunk = os.pread(fd, want, pos + len(buf)) if want > 0 else b""
        buf += chunk
        eof = not chunk or pos + len(buf) >= size
        starts = message_starts(buf)
        if starts and starts[0] > 0:
            yield pos, buf[: starts[0]]  # not an entry: junk before the first From_ line
            buf, pos, starts = buf[starts[0] :], pos + starts[0], [s - starts[0] for s in starts]
        for a, b in itertools.pairwise(starts):
            yield pos + a, buf[a:b]
        if eof:
            if buf and starts:
                yield pos + starts[-1], buf[starts[-1] :]
            elif buf:
                yield pos, buf
            return
        if len(starts) > 1:
            buf, pos = buf[starts[-1] :], pos + starts[-1]


def _entry_starts_at(fd: int, pos: int) -> bool:
    before = os.pread(fd, 2, pos - 2) if pos >= 2 else b"\n\n"
    return before in (b"\n\n", b"\r\n") and os.pread(fd, 5, pos) == b"From "


def _iter_mbox(mailbox: Mailbox, on_skip: SkipSink, lock_timeout: float) -> Iterator[MboxMessage]:
    path, pos, ident = mailbox.path, 0, None
    name = path.name
    while True:
        batch: list[MboxMessage] = []
        try:
            with MboxLock(path, timeout=lock_timeout) as lock:
                st = os.fstat(lock.fd)
                if ident is None:
                    ident = (st.st_dev, st.st_ino)
                elif (st.st_dev, st.st_ino) != ident or not _entry_starts_at(lock.fd, pos):
                    on_skip(str(path), "mailbox changed", f"rewritten by someone else at {pos}")
                    return
                read = 0
                for offset, entry in iter_entries(lock.fd, pos, st.st_size):
                    lock.refresh()
                    pos = offset + len(entry)
                    if not entry.startswith(b"From "):
                        log.warning(
                            "%s: %d bytes before the first From_ line left alone", path, len(entry)
                        )
                        continue
                    _, message, _ = split_entry(entry)
                    batch.append(
                        MboxMessage(
                            mailbox=mailbox,
                            folder=name,
                            key=str(offset),
                            offset=offset,
                            data=message,
                        )
                    )
                    read += len(entry)
                    if read >= READ_BUDGET:
                        break
                done = pos >= st.st_size
        except MboxLockError as e:
            on_skip(str(path), "locked", str(e))
            return
        except FileNotFoundError:
            on_skip(str(path), "vanished", "the mbox disappeared")
            return
        except OSError as e:
            on_skip(str(path), "unreadable", e.strerror or str(e))
            return
        yield from batch
        if done or not batch:
            return
