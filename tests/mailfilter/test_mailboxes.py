"""Maildirs, Maildir++ trees and mbox files are recognised and read without changing anything."""

from __future__ import annotations

import mailbox
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailfilter.mailboxes import (
    MailboxError,
    MaildirMessage,
    MboxMessage,
    detect,
    folder_name,
    iter_entries,
    iter_messages,
    maildir_flags,
    select_folders,
    split_entry,
)
from mailfilter.mboxlock import MboxLock, MboxLockError


def message(i: int, subject: str = "hello") -> bytes:
    return (
        f"From: sender{i}@example.com\nTo: me@example.org\nSubject: {subject} {i}\n"
        f"Message-ID: <{i}@example.com>\n\nBody of message {i}.\nFrom the start, a From line.\n"
    ).encode()


class Skips(list[tuple[str, str, str]]):
    def __call__(self, where: str, reason: str, detail: str) -> None:
        self.append((where, reason, detail))


@pytest.fixture
def maildirpp(tmp_path: Path) -> Path:
    root = tmp_path / "Maildir"
    md = mailbox.Maildir(root)
    for i in range(3):
        m = mailbox.MaildirMessage(message(i))
        if i == 1:
            m.set_subdir("cur")
            m.set_flags("RS")
        md.add(m)
    for name in ("Lists", "Lists.python", "Junk", "Junk.old", "Trash"):
        md.add_folder(name).add(message(10, name))
    return root


def test_detect_a_maildirpp_tree_lists_its_folders(maildirpp: Path) -> None:
    mb = detect(maildirpp)
    assert (mb.kind, mb.root) == ("maildir", maildirpp)
    assert [f.name for f in mb.folders] == [
        "INBOX", ".Junk", ".Junk.old", ".Lists", ".Lists.python", ".Trash"
    ]  # fmt: skip


def test_a_scan_skips_the_spam_folder_and_trash_unless_asked(maildirpp: Path) -> None:
    mb = detect(maildirpp)
    assert [f.name for f in select_folders(mb, ".Junk")] == ["INBOX", ".Lists", ".Lists.python"]
    assert [f.name for f in select_folders(mb, "Junk", ["Lists", "inbox"])] == [".Lists", "INBOX"][
        ::-1
    ]
    assert [f.name for f in select_folders(mb, ".Junk", [".Junk"])] == [".Junk"]


def test_a_single_maildirpp_folder_keeps_the_root_for_its_spam_folder(maildirpp: Path) -> None:
    mb = detect(maildirpp / ".Lists")
    assert mb.root == maildirpp
    assert [f.name for f in select_folders(mb, ".Junk")] == [".Lists"]


def test_detect_mbox_and_empty_file(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "inbox")
    box.add(message(1))
    box.close()
    (tmp_path / "empty").write_bytes(b"")
    assert detect(tmp_path / "inbox").kind == "mbox"
    assert detect(tmp_path / "empty").kind == "mbox"
    (tmp_path / "link").symlink_to(tmp_path / "inbox")
    assert detect(tmp_path / "link").path == tmp_path / "inbox"  # the file, not the link


@pytest.mark.parametrize("what", ["missing", "plain dir", "text file"])
def test_anything_else_is_a_mailbox_error(tmp_path: Path, what: str) -> None:
    path = tmp_path / "x"
    if what == "plain dir":
        path.mkdir()
    elif what == "text file":
        path.write_bytes(b"hello\n")
    with pytest.raises(MailboxError, match="x"):
        detect(path)


def test_maildir_mail_comes_from_new_and_cur_with_flags(maildirpp: Path) -> None:
    skips = Skips()
    refs = list(iter_messages(detect(maildirpp), skips, wanted=["INBOX"]))
    assert not skips
    assert [r.key.split("/")[0] for r in refs] == ["new", "new", "cur"]
    assert all(isinstance(r, MaildirMessage) and r.folder == "INBOX" for r in refs)
    assert [r.flags for r in refs] == ["", "", "RS"]
    assert sorted(r.read() for r in refs) == sorted(message(i) for i in range(3))


def test_maildir_files_are_read_lazily_and_dotfiles_ignored(maildirpp: Path) -> None:
    (maildirpp / "cur" / ".hidden").write_bytes(b"x")
    refs = list(iter_messages(detect(maildirpp), Skips(), wanted=["INBOX"]))
    assert len(refs) == 3
    assert isinstance(refs[0], MaildirMessage)
    refs[0].path.unlink()
    with pytest.raises(FileNotFoundError):
        refs[0].read()


def test_a_fifo_or_directory_in_a_maildir_is_an_oserror_not_a_hang(maildirpp: Path) -> None:
    os.mkfifo(maildirpp / "cur" / "fifo:2,S")
    (maildirpp / "cur" / "dir:2,").mkdir()
    refs = [
        r for r in iter_messages(detect(maildirpp), Skips()) if "fifo" in r.key or "dir" in r.key
    ]
    assert len(refs) == 2
    for ref in refs:
        with pytest.raises(OSError, match="not a regular file"):
            ref.read()


def test_an_unlistable_folder_is_reported_and_the_rest_still_read(
    maildirpp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_scandir = os.scandir

    def scandir(path: Path) -> object:  # tests run as root: chmod 000 would not stop us
        if Path(path) == maildirpp / ".Lists" / "new":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skips = Skips()
    refs = list(iter_messages(detect(maildirpp), skips))
    assert [s[1] for s in skips] == ["unreadable"]
    assert len(refs) == 4  # 3 in INBOX, 1 in .Lists.python


def test_flag_and_folder_names() -> None:
    assert maildir_flags("123.M1P2.host:2,FS") == "FS"
    assert maildir_flags("123.M1P2.host") == ""
    assert folder_name("inbox") == "INBOX"
    assert folder_name("Junk") == ".Junk"
    assert folder_name(".Junk") == ".Junk"


def write_mbox(path: Path, raws: list[bytes]) -> None:
    box = mailbox.mbox(path)
    for raw in raws:
        box.add(raw)
    box.close()


def test_mbox_entries_match_the_stdlib_reading(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    write_mbox(path, [message(i) for i in range(5)])
    refs = list(iter_messages(detect(path), Skips()))
    stdlib = mailbox.mbox(path)
    assert [r.read() for r in refs] == [stdlib.get_bytes(k) for k in stdlib.iterkeys()]
    assert all(isinstance(r, MboxMessage) for r in refs)
    assert not (tmp_path / "inbox.lock").exists()


def test_mbox_is_read_in_pieces_across_lock_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailfilter.mailboxes as mailboxes

    monkeypatch.setattr(mailboxes, "READ_BUDGET", 300)
    path = tmp_path / "inbox"
    write_mbox(path, [message(i) for i in range(20)])
    refs = list(iter_messages(detect(path), Skips()))
    assert [r.read() for r in refs] == [
        message(i).replace(b"\nFrom ", b"\n>From ") for i in range(20)
    ]


def test_mbox_rewritten_between_lock_holds_stops_with_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailfilter.mailboxes as mailboxes

    monkeypatch.setattr(mailboxes, "READ_BUDGET", 300)
    path = tmp_path / "inbox"
    write_mbox(path, [message(i) for i in range(20)])
    skips = Skips()
    it = iter_messages(detect(path), skips)
    first = next(it)
    write_mbox(tmp_path / "other", [message(99)])
    os.replace(tmp_path / "other", path)
    rest = list(it)
    assert first.read().startswith(b"From: sender0")
    assert len(rest) < 19
    assert [s[1] for s in skips] == ["mailbox changed"]


def test_a_locked_mbox_is_a_skip_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    write_mbox(path, [message(1)])
    (tmp_path / "inbox.lock").write_bytes(b"")  # someone else's fresh dotlock
    skips = Skips()
    assert list(iter_messages(detect(path), skips, lock_timeout=0.2)) == []
    assert [s[1] for s in skips] == ["locked"]


def test_a_stale_lock_of_a_dead_mailfilter_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    write_mbox(path, [message(1)])
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    (tmp_path / "inbox.lock").write_text(f"{int(dead.stdout)} mailfilter@{os.uname().nodename}\n")
    assert len(list(iter_messages(detect(path), Skips(), lock_timeout=5))) == 1
    assert not (tmp_path / "inbox.lock").exists()


def test_an_old_foreign_lock_is_broken_like_procmail_does(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    write_mbox(path, [message(1)])
    lock = tmp_path / "inbox.lock"
    lock.write_bytes(b"0")
    os.utime(lock, (time.time() - 2000, time.time() - 2000))
    assert len(list(iter_messages(detect(path), Skips(), lock_timeout=5))) == 1


LOCKER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    path = sys.argv[1]
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("got it")
    except OSError:
        print("blocked")
    """
)


def test_mbox_lock_holds_a_dotlock_and_an_fcntl_lock(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    write_mbox(path, [message(1)])
    with MboxLock(path) as lock:
        assert (tmp_path / "inbox.lock").read_text().split()[0] == str(os.getpid())
        other = subprocess.run([sys.executable, "-c", LOCKER, str(path)], capture_output=True)
        assert other.stdout.strip() == b"blocked"
        with pytest.raises(MboxLockError):
            MboxLock(path, timeout=0.1).__enter__()
        assert lock.fd >= 0
    assert not (tmp_path / "inbox.lock").exists()
    other = subprocess.run([sys.executable, "-c", LOCKER, str(path)], capture_output=True)
    assert other.stdout.strip() == b"got it"


_line = st.sampled_from(
    [b"From a Mon Jan  1 00:00:00 2024", b"From b", b"", b"Subject: x", b">From c", b"text", b"\r"]
)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_line, max_size=40), budget=st.integers(1, 64), crlf=st.booleans())
def test_property_mbox_entries_join_back_to_the_file(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], budget: int, crlf: bool
) -> None:
    data = (b"\r\n" if crlf else b"\n").join(lines)
    path = tmp_path_factory.mktemp("mbox") / "box"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        entries = list(iter_entries(fd, 0, len(data), budget=budget))
    finally:
        os.close(fd)
    assert b"".join(e for _, e in entries) == data
    assert [off for off, _ in entries] == [
        sum(len(e) for _, e in entries[:i]) for i in range(len(entries))
    ]
    for _, entry in entries[1:]:
        assert entry.startswith(b"From ")
    for _, entry in entries:
        assert b"".join(split_entry(entry)) == entry
