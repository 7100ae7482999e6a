"""What to do with a scored message: plan it, then apply it or only say what would happen.

- `tag` adds our headers to every scored message (SpamAssassin does the same to ham).
  A Maildir file is written to `tmp/` and swapped into place (`atomic.exchange`), keeping its
  name, flags, mode and times; a Dovecot `,S=`/`,W=` size in the name is then corrected.
  Messages bigger than `max_size` are never rewritten.
- `move` renames spam into the Maildir++ spam folder (created with cur/new/tmp if missing),
  keeping the file name, so `:2,` flags and new/ vs cur/ stay as they were; an mbox's spam goes
  to `spam_mbox` (default `<mbox>.spam`), see `mboxedit`.
- `none` changes nothing. With dry_run nothing changes either; outcomes say "would tag/move".
mbox changes are collected and applied once per mbox by `finish()`, under its lock.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mailfilter.atomic import exchange, fsync_dir, rename_noreplace, unique_name, write_new_file
from mailfilter.headers import check_subject_prefix, tag_message
from mailfilter.mailboxes import Mailbox, MaildirMessage, MboxMessage, MessageRef, folder_name
from mailfilter.mboxedit import MboxChange, apply_changes
from mailfilter.mboxlock import MboxLockError, pid_alive
from mailfilter.settings import Settings
from mailfilter.verdict import Verdict

log = logging.getLogger(__name__)
Change = Literal["keep", "tag", "move"]
_SIZE_FIELD = re.compile(r",([SW])=\d+")
TMP_SUFFIX = ".mailfilter"
_TMP_PID = re.compile(r"^\d+\.M\d+P(\d+)Q\d+\.(.+)\.mailfilter$")


@dataclass
class Plan:
    """The change planned for one scored message (and, for a Maildir tag, its bytes)."""

    ref: MessageRef
    verdict: Verdict
    change: Change
    content_hash: str
    raw: bytes = b""
    note: str | None = None


@dataclass
class Outcome:
    """What happened: kept, tagged, unchanged, moved, would tag, would move, vanished, changed
    (rewritten by someone else after it was read: left alone), failed."""

    plan: Plan
    result: str
    detail: str | None = None
    where: str | None = None  # folder/key after a move or rename

    @property
    def failed(self) -> bool:
        """True when the planned change could not be made because of an error."""
        return self.result in ("failed", "locked")


def spam_folder_path(settings: Settings, mailbox: Mailbox) -> Path:
    """The Maildir++ spam folder for a Maildir: `<root>/.Junk`."""
    return mailbox.root / folder_name(settings.spam_folder)


def spam_mbox_path(settings: Settings, mbox: Path) -> Path:
    """The mbox that spam from `mbox` moves to."""
    target = settings.spam_mbox or mbox.with_name(mbox.name + ".spam")
    return Path(os.path.realpath(target.expanduser()))


def plan(
    ref: MessageRef, verdict: Verdict, raw: bytes, digest: str, settings: Settings, size: int
) -> Plan:
    """The change `settings.action` asks for this message."""
    if settings.action == "tag":
        if size > settings.max_size:
            note = f"too large to tag ({size} > max_size {settings.max_size} bytes)"
            log.info("%s %s: %s", ref.folder, ref.key, note)
            return Plan(ref, verdict, "keep", digest, note=note)
        return Plan(ref, verdict, "tag", digest, raw=raw)
    if settings.action == "move" and verdict.is_spam:
        if _in_spam_place(ref, settings):
            return Plan(ref, verdict, "keep", digest, note="already in the spam folder")
        return Plan(ref, verdict, "move", digest)
    return Plan(ref, verdict, "keep", digest)


def _in_spam_place(ref: MessageRef, settings: Settings) -> bool:
    if isinstance(ref, MaildirMessage):
        return ref.folder_path.resolve() == spam_folder_path(settings, ref.mailbox).resolve()
    return spam_mbox_path(settings, ref.mailbox.path) == ref.mailbox.path


def ensure_maildir_folder(path: Path) -> None:
    """Create a Maildir++ folder (cur/new/tmp and the `maildirfolder` marker) if missing."""
    if (path / "cur").is_dir() and (path / "new").is_dir() and (path / "tmp").is_dir():
        return
    path.mkdir(mode=0o700, exist_ok=True)
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(mode=0o700, exist_ok=True)
    (path / "maildirfolder").touch(mode=0o600)
    fsync_dir(path)
    fsync_dir(path.parent)


def _with_sizes(name: str, data: bytes) -> str:
    """A Maildir name with its `,S=` (size) and `,W=` (size with CRLF) fields made true."""
    base, colon, info = name.partition(":")
    virtual = len(data) + data.count(b"\n") - data.count(b"\r\n")
    sizes = {"S": len(data), "W": virtual}
    base = _SIZE_FIELD.sub(lambda m: f",{m.group(1)}={sizes[m.group(1)]}", base)
    return base + colon + info


class Applier:
    """Applies plans: Maildir changes at once, mbox changes per mbox in `finish()`."""

    def __init__(self, settings: Settings, dry_run: bool = False, lock_timeout: float = 60.0):
        self.settings = settings
        self.dry_run = dry_run
        self.lock_timeout = lock_timeout
        self.prefix = check_subject_prefix(settings.subject_prefix)
        self._mbox: dict[Path, list[Plan]] = {}
        self._cleaned: set[Path] = set()

    def apply(self, plan: Plan) -> Outcome | None:
        """Apply (or describe) one plan; None when it waits for `finish()`."""
        if plan.change == "keep":
            return Outcome(plan, "kept", plan.note)
        if self.dry_run:
            return Outcome(plan, f"would {plan.change}", self._target(plan))
        if isinstance(plan.ref, MboxMessage):
            self._mbox.setdefault(plan.ref.mailbox.path, []).append(plan)
            return None
        assert isinstance(plan.ref, MaildirMessage)
        try:
            if plan.change == "tag":
                return self._tag_maildir(plan, plan.ref)
            return self._move_maildir(plan, plan.ref)
        except FileNotFoundError:
            return Outcome(plan, "vanished", "the file disappeared before it could be changed")
        except OSError as e:
            log.error("%s: cannot %s: %s", plan.ref.key, plan.change, e)
            return Outcome(plan, "failed", f"{plan.change}: {e.strerror or e}")

    def _target(self, plan: Plan) -> str:
        if plan.change == "tag":
            return f"add X-Spam headers ({plan.verdict.label}, score {plan.verdict.score:.4f})"
        if isinstance(plan.ref, MaildirMessage):
            return f"move to {spam_folder_path(self.settings, plan.ref.mailbox)}"
        return f"move to {spam_mbox_path(self.settings, plan.ref.mailbox.path)}"

    def _tag_maildir(self, plan: Plan, ref: MaildirMessage) -> Outcome:
        tagged = tag_message(plan.raw, plan.verdict, self.prefix)
        src = ref.path
        result = "unchanged"
        if tagged != plan.raw:
            st = os.stat(src)
            if ref.read_stat is not None and ref.read_stat != (st.st_size, st.st_mtime_ns):
                return Outcome(plan, "changed", "the file changed after it was read")
            tmpdir = ref.folder_path / "tmp"
            tmpdir.mkdir(mode=0o700, exist_ok=True)
            self.clean_tmp(tmpdir)
            tmp = tmpdir / f"{unique_name()}{TMP_SUFFIX}"
            write_new_file(tmp, tagged, like=st)
            try:
                exchange(tmp, src)  # tmp now holds the old bytes, src the tagged ones
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            fsync_dir(src.parent)
            tmp.unlink(missing_ok=True)
            result = "tagged"
        name = _with_sizes(ref.name, tagged)  # also after a run killed before this rename
        if name != ref.name:
            try:
                rename_noreplace(src, src.parent / name)
                fsync_dir(src.parent)
            except OSError as e:  # the tag is in; only the size hint in the name is stale
                log.warning("%s: tagged, but cannot fix the size in its name: %s", src, e)
                name = ref.name
        return Outcome(plan, result, where=f"{ref.folder}/{ref.subdir}/{name}")

    def clean_tmp(self, tmpdir: Path) -> None:
        """Remove what a killed mailfilter left in tmp/ (never delivered mail: tmp/ is not read)."""
        if tmpdir in self._cleaned:
            return
        self._cleaned.add(tmpdir)
        host = unique_name().split(".", 2)[2]
        for leftover in tmpdir.glob(f"*{TMP_SUFFIX}"):
            match = _TMP_PID.match(leftover.name)
            if match and match.group(2) == host and not pid_alive(int(match.group(1))):
                log.info("removing %s, left by an interrupted run", leftover)
                leftover.unlink(missing_ok=True)

    def _move_maildir(self, plan: Plan, ref: MaildirMessage) -> Outcome:
        dest = spam_folder_path(self.settings, ref.mailbox)
        ensure_maildir_folder(dest)
        target = dest / ref.subdir / ref.name
        try:
            rename_noreplace(ref.path, target)
        except FileExistsError:
            return Outcome(plan, "failed", f"{target} already exists")
        fsync_dir(target.parent)
        fsync_dir(ref.path.parent)
        return Outcome(plan, "moved", where=f"{dest.name}/{ref.subdir}/{ref.name}")

    def finish(self) -> list[Outcome]:
        """Apply the collected mbox changes, one locked rewrite per mbox."""
        outcomes: list[Outcome] = []
        for path, plans in self._mbox.items():
            spam = spam_mbox_path(self.settings, path)
            changes = [MboxChange(p.content_hash, p.change, p.verdict) for p in plans]  # type: ignore[arg-type]
            try:
                results = apply_changes(path, changes, spam, self.prefix, self.lock_timeout)
            except MboxLockError as e:
                outcomes += [Outcome(p, "locked", str(e)) for p in plans]
                continue
            except OSError as e:
                log.error("%s: cannot change the mbox: %s", path, e)
                outcomes += [Outcome(p, "failed", f"{p.change}: {e.strerror or e}") for p in plans]
                continue
            for p, result in zip(plans, results, strict=True):
                detail = "no longer in the mbox" if result == "vanished" else None
                where = str(spam) if result == "moved" else None
                outcomes.append(Outcome(p, result, detail, where))
        self._mbox.clear()
        return outcomes
