"""Changing an mbox without ever losing a message: lock, stream into a temp file, rename.

- The mbox's dotlock + fcntl lock (`mboxlock`) is held from the first read to the rename, so a
  delivery waits for us and then appends to the new file.
- The new mbox is written to a temp file beside it, fsynced and renamed over the old one: a kill
  at any instant leaves the old mbox or the new one, never a mix. (The stdlib's
  `mailbox.mbox.flush()` renames a temp file too, but re-serialises changed messages, closes the
  locked descriptor, which drops the fcntl lock, before the rename, and never fsyncs the
  directory.) The mode, owner and times of the mbox are kept.
- Messages are found again by content hash, not offset, so whatever changed since the scan read
  them (a client expunged some, new mail arrived) is matched or left alone.
- A move changes two files. First a journal beside the source records what moves; then the spam
  mbox is rewritten (its old bytes + the moved messages), then the source. A run killed in
  between is finished by the next one that locks the source (`recover`): a message is never in
  neither file, and in both only until then.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mailfilter.atomic import copy_metadata, fsync_dir, unique_name, write_new_file
from mailfilter.headers import tag_message
from mailfilter.mailboxes import iter_entries, split_entry
from mailfilter.mboxlock import MboxLock
from mailfilter.state import content_hash
from mailfilter.verdict import Verdict

log = logging.getLogger(__name__)
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class MboxChange:
    """One planned change to a message of an mbox, found by its content hash."""

    content_hash: str
    change: Literal["tag", "move"]
    verdict: Verdict


def journal_path(path: Path) -> Path:
    """Where a move out of `path` keeps its journal."""
    return path.with_name(f".{path.name}.mailfilter-journal")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.mailfilter."


class _Rewrite:
    """A temp file beside an mbox that replaces it on commit; old leftovers are removed first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        prefix = _temp_prefix(path)
        with contextlib.suppress(OSError):
            for leftover in path.parent.glob(f"{prefix}*.tmp"):  # we hold the lock: all stale
                log.info("removing %s, left by an interrupted run", leftover)
                leftover.unlink(missing_ok=True)
        self.tmp = path.with_name(f"{prefix}{unique_name()}.tmp")
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self.file = open(fd, "wb")  # noqa: SIM115  (closed in commit/abort)
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append bytes to the new file."""
        self.file.write(data)
        self.sha.update(data)
        self.size += len(data)

    def commit(self, like: os.stat_result, keep_times: bool) -> None:
        """fsync, copy the old file's mode/owner (and times), rename into place, fsync the dir."""
        self.file.flush()
        copy_metadata(self.file.fileno(), like)
        os.fsync(self.file.fileno())
        self.file.close()
        if keep_times:
            os.utime(self.tmp, ns=(like.st_atime_ns, like.st_mtime_ns))
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Throw the temp file away."""
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def _message_hash(entry: bytes) -> str | None:
    return content_hash(split_entry(entry)[1]) if entry.startswith(b"From ") else None


def apply_changes(
    path: Path,
    changes: list[MboxChange],
    spam_path: Path | None,
    prefix: str | None,
    lock_timeout: float = 60.0,
) -> list[str]:
    """Tag or move messages of one mbox; per change: tagged, unchanged, moved or vanished."""
    results = ["vanished"] * len(changes)
    pending: dict[str, list[int]] = defaultdict(list)
    for i, change in enumerate(changes):
        pending[change.content_hash].append(i)
    with MboxLock(path, timeout=lock_timeout) as lock:
        _recover_locked(path, lock, lock_timeout)
        st = os.fstat(lock.fd)
        rewrite = _Rewrite(path)
        try:
            moved: list[bytes] = []
            moved_hashes: list[str] = []
            changed = False
            for _, entry in iter_entries(lock.fd, 0, st.st_size):
                lock.refresh()
                digest = _message_hash(entry)
                if digest is not None and pending.get(digest):
                    i = pending[digest].pop(0)
                    change = changes[i]
                    head, message, sep = split_entry(entry)
                    if change.change == "move" and spam_path is not None:
                        moved.append(head + message + (sep or b"\n"))
                        moved_hashes.append(digest)
                        results[i], changed = "moved", True
                        continue
                    tagged = tag_message(message, change.verdict, prefix)
                    results[i] = "unchanged" if tagged == message else "tagged"
                    if tagged != message:
                        entry, changed = head + tagged + sep, True
                rewrite.write(entry)
            if not changed:
                rewrite.abort()
                return results
            if not moved:
                rewrite.commit(st, keep_times=True)
                return results
            assert spam_path is not None
            with MboxLock(spam_path, timeout=lock_timeout, create=True) as spam_lock:
                journal = {
                    "spam": str(spam_path),
                    "spam_size": os.fstat(spam_lock.fd).st_size,
                    "hashes": moved_hashes,
                    "source_size": rewrite.size,
                    "source_sha256": rewrite.sha.hexdigest(),
                }
                _write_journal(path, journal)
                _append_by_rewrite(spam_path, spam_lock, moved)
                rewrite.commit(st, keep_times=True)
            _remove_journal(path)
        except BaseException:
            rewrite.abort()
            raise
    return results


def _append_by_rewrite(spam_path: Path, lock: MboxLock, entries: list[bytes]) -> None:
    """Replace the spam mbox by a copy of itself with `entries` appended."""
    st = os.fstat(lock.fd)
    rewrite = _Rewrite(spam_path)
    try:
        tail = b""
        for pos in range(0, st.st_size, COPY_CHUNK):
            chunk = os.pread(lock.fd, min(COPY_CHUNK, st.st_size - pos), pos)
            rewrite.write(chunk)
            tail = (tail + chunk)[-3:]
            lock.refresh()
        if st.st_size and not (tail.endswith(b"\n\n") or tail.endswith(b"\n\r\n")):
            rewrite.write(b"\n" if tail.endswith(b"\n") else b"\n\n")  # separator only
        for entry in entries:
            rewrite.write(entry)
        rewrite.commit(st, keep_times=False)
    except BaseException:
        rewrite.abort()
        raise


def _write_journal(path: Path, journal: dict[str, object]) -> None:
    tmp = path.with_name(f"{_temp_prefix(path)}{unique_name()}.tmp")
    write_new_file(tmp, json.dumps(journal).encode())
    os.replace(tmp, journal_path(path))
    fsync_dir(path.parent)


def _remove_journal(path: Path) -> None:
    journal_path(path).unlink(missing_ok=True)
    fsync_dir(path.parent)


def recover(path: Path, lock_timeout: float = 60.0) -> bool:
    """Finish a move out of `path` that a killed run left half done; True if there was one."""
    if not journal_path(path).exists():
        return False
    with MboxLock(path, timeout=lock_timeout) as lock:
        return _recover_locked(path, lock, lock_timeout)


def _source_done(lock: MboxLock, journal: dict[str, object]) -> bool:
    """Whether the source already is the rewritten file (maybe with mail appended since)."""
    size = int(str(journal["source_size"]))
    if os.fstat(lock.fd).st_size < size:
        return False
    sha = hashlib.sha256()
    for pos in range(0, size, COPY_CHUNK):
        sha.update(os.pread(lock.fd, min(COPY_CHUNK, size - pos), pos))
    return sha.hexdigest() == journal["source_sha256"]


def _recover_locked(path: Path, lock: MboxLock, lock_timeout: float) -> bool:
    try:
        journal = json.loads(journal_path(path).read_bytes())
        spam_path = Path(journal["spam"])
        hashes = Counter(str(h) for h in journal["hashes"])
        spam_size = int(journal["spam_size"])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.error("%s: unreadable move journal %s left alone: %s", path, journal_path(path), e)
        return False
    if not _source_done(lock, journal):
        arrived: Counter[str] = Counter()
        with contextlib.suppress(FileNotFoundError), MboxLock(spam_path, lock_timeout) as spam:
            end = os.fstat(spam.fd).st_size
            for _, entry in iter_entries(spam.fd, spam_size, end):
                digest = _message_hash(entry)
                if digest is not None:
                    arrived[digest] += 1
        remove = hashes & arrived  # copied into the spam mbox: take them out of the source
        log.warning(
            "%s: finishing an interrupted move of %d message(s) to %s",
            path, sum(remove.values()), spam_path,
        )  # fmt: skip
        if remove:
            st = os.fstat(lock.fd)
            rewrite = _Rewrite(path)
            try:
                for _, entry in iter_entries(lock.fd, 0, st.st_size):
                    digest = _message_hash(entry)
                    if digest is not None and remove[digest] > 0:
                        remove[digest] -= 1
                        continue
                    rewrite.write(entry)
                rewrite.commit(st, keep_times=True)
            except BaseException:
                rewrite.abort()
                raise
    _remove_journal(path)
    return True
