"""The user's own models: `current.safetensors` and the one it replaced, `previous.safetensors`,
under `$XDG_DATA_HOME/mailfilter/models/`.

`mailfilter retrain` installs a model here and `mailfilter rollback` swaps the two back. Each
step is a link or a rename inside this one directory, so whenever we are killed `current` is a
whole checkpoint, the old one or the new one, never a half-written file; a step cut short is
finished (or undone) by the next operation on the store.

The active model (`active_model_path`): the `checkpoint` setting when it is set, else
`current.safetensors` when there is one, else the model bundled with the package.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mailfilter.atomic import fsync_dir
from mailfilter.settings import xdg_dir

if TYPE_CHECKING:
    import torch

    from models.checkpoint import CheckpointMeta

log = logging.getLogger(__name__)

CURRENT = "current.safetensors"
PREVIOUS = "previous.safetensors"
_INCOMING = ".incoming.safetensors"  # the new model, whole, before it becomes current
_SWAP = ".swap.safetensors"  # the old current during a rollback
_STAGED = ".previous.tmp"  # the next `previous`, before it replaces the old one
_LOCK = ".lock"


class ModelStoreError(Exception):
    """The model store cannot do what was asked (nothing to roll back to, busy, unwritable)."""


def default_models_dir() -> Path:
    """`$XDG_DATA_HOME/mailfilter/models`."""
    return xdg_dir("XDG_DATA_HOME", ".local/share") / "mailfilter" / "models"


def installed_model_path(root: Path | None = None) -> Path | None:
    """`current.safetensors` of the store, when a retrain has installed one."""
    current = (root or default_models_dir()) / CURRENT
    return current if current.is_file() else None


def active_model_path(checkpoint: Path | None, root: Path | None = None) -> Path:
    """The model scans use: the configured checkpoint, else the installed one, else the bundled."""
    if checkpoint is not None:
        return checkpoint
    installed = installed_model_path(root)
    if installed is not None:
        return installed
    from mailfilter.engine import bundled_checkpoint_path  # torch is needed to use it anyway

    return bundled_checkpoint_path()


def _link_or_copy(src: Path, dst: Path) -> None:
    """`dst` as a new name for `src` (a copy where hard links are not possible), made durable."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        shutil.copyfile(src, dst)
        with open(dst, "rb") as f:
            os.fsync(f.fileno())


class ModelStore:
    """The directory holding the user's current and previous models."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_models_dir()

    @property
    def current(self) -> Path:
        """The installed model (may not exist yet)."""
        return self.root / CURRENT

    @property
    def previous(self) -> Path:
        """The model the installed one replaced (may not exist)."""
        return self.root / PREVIOUS

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's lock; a second retrain or rollback fails at once instead of racing."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise ModelStoreError(f"cannot use the model directory {self.root}: {e}") from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ModelStoreError(
                    f"another retrain or rollback is using {self.root}; try again later"
                ) from None
            self.recover()
            yield
        finally:
            os.close(fd)

    def recover(self) -> None:
        """Finish a rollback that was cut short, and drop half-written files."""
        swap = self.root / _SWAP
        if swap.exists():
            if self.previous.exists():  # killed before the swap began: it never happened
                swap.unlink()
            else:  # killed between its two renames: finish it
                os.replace(swap, self.previous)
                log.warning("finished an interrupted rollback in %s", self.root)
        for leftover in (_INCOMING, _STAGED):
            (self.root / leftover).unlink(missing_ok=True)
        for tmp in self.root.glob(f".{_INCOMING}.*.tmp"):  # save_checkpoint's own temp files
            tmp.unlink(missing_ok=True)

    def install(
        self,
        model: torch.nn.Module,
        meta: CheckpointMeta,
        base: Path,
        dtype: torch.dtype | None = None,
    ) -> Path:
        """Write a model and make it current; the old current (else `base`) becomes previous."""
        from models.checkpoint import save_checkpoint

        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        incoming = save_checkpoint(model, meta, self.root / _INCOMING, dtype=dtype)
        try:
            staged = self.root / _STAGED
            old = self.current if self.current.is_file() else base
            _link_or_copy(old, staged)
            os.replace(staged, self.previous)
            os.replace(incoming, self.current)
            fsync_dir(self.root)
        except BaseException:
            incoming.unlink(missing_ok=True)
            (self.root / _STAGED).unlink(missing_ok=True)
            raise
        log.info("installed %s (previous kept as %s)", self.current, self.previous)
        return self.current

    def rollback(self) -> Path:
        """Swap current and previous (a second rollback undoes the first)."""
        if not self.previous.is_file():
            raise ModelStoreError(f"no previous model in {self.root} to roll back to")
        if not self.current.is_file():
            os.replace(self.previous, self.current)
        else:
            swap = self.root / _SWAP
            _link_or_copy(self.current, swap)
            os.replace(self.previous, self.current)  # `current` is always a whole model
            os.replace(swap, self.previous)
        fsync_dir(self.root)
        log.info("rolled back: %s is now the model that was previous", self.current)
        return self.current
