"""mbox locking the way procmail, Postfix and Dovecot do it: a dotlock, then an fcntl lock.

All three create `<mbox>.lock` *before* they open the mbox, so while we hold the dotlock an MDA
waits without holding a descriptor to the old file, and a rewrite that renames a new file into
place cannot make it append to a replaced inode. The stdlib `mailbox.mbox.lock()` takes the
fcntl lock first and the dotlock second, gives up at once instead of waiting, and never breaks a
stale lock, so it is not used.

fcntl (POSIX) locks belong to the process and are dropped when *any* descriptor of the file is
closed, so everything under the lock reads and writes through `MboxLock.fd`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

STALE_AFTER = 1024.0  # seconds; procmail's LOCKTIMEOUT: an older dotlock is someone's leftover
REFRESH_EVERY = 60.0  # touch our dotlock so nobody takes it for stale (Postfix: 500 s)


class MboxLockError(Exception):
    """An mbox stayed locked by someone else for longer than we wait."""


def _our_signature() -> bytes:
    return f"{os.getpid()} mailfilter@{socket.gethostname()}\n".encode()


def _is_dead_lock_of_ours(content: bytes) -> bool:
    """True for a dotlock written by a mailfilter process on this host that no longer runs."""
    parts = content.split()
    if len(parts) != 2 or not parts[0].isdigit():
        return False
    if parts[1].decode(errors="replace") != f"mailfilter@{socket.gethostname()}":
        return False
    return not pid_alive(int(parts[0]))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def break_stale_lock(path: Path, max_age: float | None = None) -> bool:
    """Remove `<path>.lock` if a dead mailfilter left it, or (given max_age) it is that old."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        st = os.stat(lock_path)
        with open(lock_path, "rb") as f:
            content = f.read(200)
    except (FileNotFoundError, NotADirectoryError):
        return False
    old = max_age is not None and time.time() - st.st_mtime > max_age
    if not (old or _is_dead_lock_of_ours(content)):
        return False
    with contextlib.suppress(FileNotFoundError):
        if os.path.samestat(st, os.stat(lock_path)):  # not a fresh one taken meanwhile
            log.warning("removing stale lock %s", lock_path)
            os.unlink(lock_path)
            return True
    return False


class MboxLock:
    """Hold `<path>.lock` and an exclusive fcntl lock on `path` (created if missing)."""

    def __init__(self, path: Path, timeout: float = 60.0, create: bool = False) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.timeout = timeout
        self.create = create
        self.fd = -1
        self._dotlocked = False
        self._touched = 0.0

    def __enter__(self) -> MboxLock:
        deadline = time.monotonic() + self.timeout
        self._take_dotlock(deadline)
        try:
            self._take_fcntl(deadline)
        except BaseException:
            self._drop_dotlock()
            raise
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def release(self) -> None:
        """Drop the fcntl lock (by closing our descriptor), then the dotlock."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._drop_dotlock()

    def refresh(self) -> None:
        """Touch the dotlock now and then during long work so it never looks stale."""
        now = time.monotonic()
        if self._dotlocked and now - self._touched > REFRESH_EVERY:
            with contextlib.suppress(OSError):
                os.utime(self.lock_path)
            self._touched = now

    def _take_dotlock(self, deadline: float) -> None:
        # The lock appears with its content in one step (link of a finished file, which is
        # also how NFS wants it), so a kill can never leave an empty lock nobody recognises.
        pending = self.path.with_name(f".{self.path.name}.lock.{os.getpid()}.mailfilter")
        self._remove_dead_pending()
        delay = 0.05
        while True:
            try:
                pending.unlink(missing_ok=True)
                fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, _our_signature())
                finally:
                    os.close(fd)
                try:
                    os.link(pending, self.lock_path)
                finally:
                    pending.unlink()
            except FileExistsError:
                self._break_if_stale()
            except PermissionError:
                # Like procmail and Postfix in a directory we may not write: fcntl alone.
                log.warning("cannot create %s; relying on the fcntl lock only", self.lock_path)
                return
            else:
                self._dotlocked = True
                self._touched = time.monotonic()
                return
            if time.monotonic() >= deadline:
                raise MboxLockError(f"{self.path} is locked ({self.lock_path} exists)")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _remove_dead_pending(self) -> None:
        """Remove half-made locks of killed mailfilter processes (`.<mbox>.lock.<pid>...`)."""
        for leftover in self.path.parent.glob(f".{glob.escape(self.path.name)}.lock.*.mailfilter"):
            pid = leftover.name.rsplit(".", 2)[-2]
            if pid.isdigit() and not pid_alive(int(pid)):
                leftover.unlink(missing_ok=True)

    def _break_if_stale(self) -> None:
        break_stale_lock(self.path, max_age=STALE_AFTER)

    def _drop_dotlock(self) -> None:
        if self._dotlocked:
            self._dotlocked = False
            try:
                with open(self.lock_path, "rb") as f:
                    ours = f.read(200) == _our_signature()
            except FileNotFoundError:
                ours = False
            if ours:
                os.unlink(self.lock_path)
            else:
                log.warning("our lock %s was taken away while we held it", self.lock_path)

    def _take_fcntl(self, deadline: float) -> None:
        flags = os.O_RDWR | (os.O_CREAT if self.create else 0) | getattr(os, "O_CLOEXEC", 0)
        delay = 0.02
        while True:
            fd = os.open(self.path, flags, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise MboxLockError(f"{self.path} is locked (fcntl)") from e
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            # Someone may have renamed a new file into place while we waited: lock that one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return
            os.close(fd)
