"""File operations that leave either the old state or the new one on disk, whenever we are killed.

`renameat2(2)` does what plain `rename` cannot: RENAME_EXCHANGE swaps two names atomically and
fails if either is gone (so a tagged copy never resurrects a message a mail client just moved),
and RENAME_NOREPLACE never clobbers. Where the kernel or filesystem lacks them (not Linux, NFS),
a check followed by a plain rename is used, which has a window of microseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import itertools
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP)
_counter = itertools.count()


def _load_renameat2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """renameat2; False when unsupported here, OSError (FileNotFoundError, ...) on failure."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def exchange(a: Path, b: Path) -> None:
    """Swap the files at `a` and `b` (FileNotFoundError if either is missing); `a` may be gone."""
    if _rename2(a, b, _RENAME_EXCHANGE):
        return
    if not os.path.lexists(b):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(b))
    os.replace(a, b)  # fallback: `a` is gone rather than holding b's old content


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename `src` to `dst`: FileExistsError if `dst` exists, FileNotFoundError if no `src`."""
    if _rename2(src, dst, _RENAME_NOREPLACE):
        return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "File exists", str(dst))
    os.rename(src, dst)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (renames, creations) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unique_name() -> str:
    """A Maildir-style unique file name: time, microseconds, pid, counter, host."""
    now = time.time()
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_counter)}.{host}"


def write_new_file(path: Path, data: bytes, like: os.stat_result | None = None) -> None:
    """Create `path` (never overwriting), write and fsync `data`; copy mode, owner, times."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if like is not None:
            copy_metadata(fd, like)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    if like is not None:
        os.utime(path, ns=(like.st_atime_ns, like.st_mtime_ns))


def copy_metadata(fd: int, like: os.stat_result) -> None:
    """Give an open file the permissions (and, when we are root, the owner) of another."""
    os.fchmod(fd, like.st_mode & 0o7777)
    if os.geteuid() == 0 and hasattr(os, "fchown"):
        try:
            os.fchown(fd, like.st_uid, like.st_gid)
        except OSError as e:
            log.debug("cannot chown: %s", e)
