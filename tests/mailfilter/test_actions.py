"""Planned changes are applied atomically, keep flags and times, never lose or copy a message."""

from __future__ import annotations

import mailbox
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mailfilter.mboxedit as mboxedit
from mailfilter.actions import Applier, Plan, ensure_maildir_folder, plan
from mailfilter.headers import strip_our_headers
from mailfilter.mailboxes import MaildirMessage, MboxMessage, MessageRef, detect, iter_messages
from mailfilter.mboxedit import journal_path, recover
from mailfilter.settings import Settings
from mailfilter.state import content_hash
from mailfilter.verdict import Verdict

SPAM = Verdict(0.99, 0.5, "spam", "m1")
HAM = Verdict(0.01, 0.5, "ham", "m1")


def message(i: int) -> bytes:
    return (
        f"From: s{i}@example.com\nTo: me@example.org\nSubject: message {i}\n"
        f"Message-ID: <{i}@example.com>\n\nBody {i}.\n"
    ).encode()


def settings(**kw: object) -> Settings:
    return Settings(**kw)  # type: ignore[arg-type]


def refs(path: Path, **kw: object) -> list[MessageRef]:
    return list(iter_messages(detect(path), lambda *a: None, **kw))  # type: ignore[arg-type]


def planned(ref: MessageRef, verdict: Verdict, s: Settings) -> Plan:
    raw = ref.read()
    return plan(ref, verdict, raw, content_hash(raw), s, len(raw))


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    md = mailbox.Maildir(tmp_path / "Maildir")
    for i in range(4):
        m = mailbox.MaildirMessage(message(i))
        if i % 2:
            m.set_subdir("cur")
            m.set_flags("FS")
        md.add(m)
    return tmp_path / "Maildir"


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_plan_follows_the_action_and_the_verdict(maildir: Path) -> None:
    ref = refs(maildir)[0]
    assert planned(ref, SPAM, settings(action="none")).change == "keep"
    assert planned(ref, HAM, settings(action="tag")).change == "tag"
    assert planned(ref, HAM, settings(action="move")).change == "keep"
    assert planned(ref, SPAM, settings(action="move")).change == "move"
    big = planned(ref, SPAM, settings(action="tag", max_size=1024))
    assert big.change == "tag"
    raw = b"Subject: big\n\n" + b"x" * 2000
    too_big = plan(ref, SPAM, raw, content_hash(raw), settings(action="tag", max_size=1024), 2014)
    assert (too_big.change, too_big.note) == (
        "keep",
        "too large to tag (2014 > max_size 1024 bytes)",
    )


def test_spam_already_in_the_spam_folder_stays(maildir: Path) -> None:
    ensure_maildir_folder(maildir / ".Junk")
    mailbox.Maildir(maildir / ".Junk").add(message(9))
    (ref,) = refs(maildir, wanted=[".Junk"])
    p = planned(ref, SPAM, settings(action="move"))
    assert (p.change, p.note) == ("keep", "already in the spam folder")


def test_maildir_tag_swaps_a_new_file_into_place(maildir: Path) -> None:
    ref = next(r for r in refs(maildir) if r.flags)
    assert isinstance(ref, MaildirMessage)
    os.utime(ref.path, (1_000_000, 1_000_000))
    os.chmod(ref.path, 0o640)
    before = ref.path.stat()
    with open(ref.path, "rb") as old:  # a reader holding the old file keeps the old bytes
        outcome = Applier(settings(action="tag")).apply(planned(ref, SPAM, settings(action="tag")))
        assert old.read() == message(1)
    assert outcome is not None and outcome.result == "tagged"
    after = ref.path.stat()
    assert after.st_ino != before.st_ino  # never edited in place
    assert (after.st_mtime, after.st_mode) == (before.st_mtime, before.st_mode)
    tagged = ref.path.read_bytes()
    assert b"X-Spam-Flag: YES\n" in tagged and strip_our_headers(tagged) == message(1)
    assert list((maildir / "tmp").iterdir()) == []


def test_maildir_tag_of_a_vanished_mail_does_not_resurrect_it(maildir: Path) -> None:
    ref = refs(maildir)[0]
    assert isinstance(ref, MaildirMessage)
    original = ref.path.read_bytes()  # which message sorts first depends on the file names
    assert original in [message(i) for i in range(4)]
    p = planned(ref, SPAM, settings(action="tag"))
    ref.path.rename(maildir / "cur" / (ref.name + ":2,S"))  # a mail client marked it read
    outcome = Applier(settings(action="tag")).apply(p)
    assert outcome is not None and outcome.result == "vanished"
    assert not ref.path.exists()
    assert (maildir / "cur" / (ref.name + ":2,S")).read_bytes() == original
    assert list((maildir / "tmp").iterdir()) == []


def test_maildir_tag_fixes_a_dovecot_size_in_the_name(maildir: Path) -> None:
    ref = refs(maildir)[0]
    assert isinstance(ref, MaildirMessage)
    sized = ref.path.with_name(f"{ref.name},S={len(message(0))},W=999")
    ref.path.rename(sized)
    (ref,) = [r for r in refs(maildir) if ",S=" in r.key]
    outcome = Applier(settings(action="tag")).apply(planned(ref, HAM, settings(action="tag")))
    assert outcome is not None and outcome.where is not None
    (new,) = [p for p in (maildir / "new").iterdir() if ",S=" in p.name]
    data = new.read_bytes()
    lines = data.count(b"\n")
    assert new.name.endswith(f",S={len(data)},W={len(data) + lines}")
    assert outcome.where.endswith(new.name)


def test_maildir_move_renames_into_the_spam_folder_keeping_name_and_flags(maildir: Path) -> None:
    s = settings(action="move")
    applier = Applier(s)
    moved = []
    for ref in refs(maildir):
        assert isinstance(ref, MaildirMessage)
        outcome = applier.apply(planned(ref, SPAM, s))
        assert outcome is not None and outcome.result == "moved"
        moved.append((ref.subdir, ref.name))
    junk = maildir / ".Junk"
    assert (junk / "maildirfolder").exists() and (junk / "tmp").is_dir()
    for subdir, name in moved:
        assert (junk / subdir / name).exists()
    assert sorted(
        mailbox.Maildir(junk, create=False).get_bytes(k) for k in mailbox.Maildir(junk).iterkeys()
    ) == sorted(message(i) for i in range(4))
    assert refs(maildir) == []


def test_maildir_move_never_overwrites_a_file_in_the_spam_folder(maildir: Path) -> None:
    ref = refs(maildir)[0]
    assert isinstance(ref, MaildirMessage)
    # Which message sorts first depends on the generated file names, so compare with its own bytes.
    original = ref.path.read_bytes()
    assert original in [message(i) for i in range(4)]
    ensure_maildir_folder(maildir / ".Junk")
    (maildir / ".Junk" / "new" / ref.name).write_bytes(b"Subject: other\n\n")
    outcome = Applier(settings(action="move")).apply(planned(ref, SPAM, settings(action="move")))
    assert outcome is not None and outcome.result == "failed" and outcome.failed
    assert ref.path.read_bytes() == original
    assert (maildir / ".Junk" / "new" / ref.name).read_bytes() == b"Subject: other\n\n"


def test_dry_run_changes_nothing(maildir: Path, tmp_path: Path) -> None:
    box = tmp_path / "mbox"
    write_mbox(box, [message(i) for i in range(3)])
    before = tree(tmp_path)
    for action in ("tag", "move"):
        s = settings(action=action)
        applier = Applier(s, dry_run=True)
        for ref in refs(maildir) + refs(box):
            outcome = applier.apply(planned(ref, SPAM, s))
            assert outcome is not None and outcome.result == f"would {action}"
        assert applier.finish() == []
    assert tree(tmp_path) == before


def write_mbox(path: Path, raws: list[bytes]) -> None:
    box = mailbox.mbox(path)
    for raw in raws:
        box.add(raw)
    box.close()


def mbox_messages(path: Path) -> list[bytes]:
    if not path.exists():
        return []
    box = mailbox.mbox(path)
    try:
        return [box.get_bytes(k) for k in box.iterkeys()]
    finally:
        box.close()


def stripped(raws: list[bytes]) -> list[bytes]:
    return sorted(strip_our_headers(r) for r in raws)


def apply_mbox(box: Path, verdicts: dict[int, Verdict], s: Settings) -> list[str]:
    applier = Applier(s)
    for ref in refs(box):
        assert isinstance(ref, MboxMessage)
        number = int(ref.read().split(b"Subject: message ")[1].split(b"\n")[0])
        if number in verdicts:
            assert applier.apply(planned(ref, verdicts[number], s)) is None  # waits for finish()
    return [o.result for o in applier.finish()]


def test_mbox_tag_rewrites_atomically_keeping_from_lines_mode_and_times(tmp_path: Path) -> None:
    box = tmp_path / "mbox"
    write_mbox(box, [message(i) for i in range(5)])
    os.chmod(box, 0o620)
    os.utime(box, (1_000_000, 2_000_000))
    from_lines = [ln for ln in box.read_bytes().split(b"\n") if ln.startswith(b"From ")]
    results = apply_mbox(box, {i: SPAM if i % 2 else HAM for i in range(5)}, settings(action="tag"))
    assert results == ["tagged"] * 5
    got = mbox_messages(box)
    assert stripped(got) == stripped([message(i) for i in range(5)])
    assert sum(b"X-Spam-Flag: YES" in m for m in got) == 2
    assert [ln for ln in box.read_bytes().split(b"\n") if ln.startswith(b"From ")] == from_lines
    st = box.stat()
    assert (st.st_mode & 0o777, st.st_mtime) == (0o620, 2_000_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mbox"]  # no lock, temp or journal


def test_mbox_move_appends_to_the_spam_mbox_then_removes(tmp_path: Path) -> None:
    box, spam = tmp_path / "mbox", tmp_path / "mbox.spam"
    write_mbox(box, [message(i) for i in range(5)])
    write_mbox(spam, [message(100)])
    results = apply_mbox(box, {1: SPAM, 3: SPAM}, settings(action="move"))
    assert results == ["moved", "moved"]
    assert mbox_messages(box) == [message(i) for i in (0, 2, 4)]
    assert mbox_messages(spam) == [message(i) for i in (100, 1, 3)]
    assert not journal_path(box).exists()


def test_mbox_move_to_a_configured_spam_mbox_is_created(tmp_path: Path) -> None:
    box, spam = tmp_path / "mbox", tmp_path / "junk" / "spam"
    spam.parent.mkdir()
    write_mbox(box, [message(i) for i in range(2)])
    apply_mbox(box, {0: SPAM}, settings(action="move", spam_mbox=spam))
    assert mbox_messages(spam) == [message(0)]
    assert spam.stat().st_mode & 0o777 == 0o600


def test_mbox_changes_find_mail_by_content_not_offset(tmp_path: Path) -> None:
    box = tmp_path / "mbox"
    write_mbox(box, [message(i) for i in range(4)])
    s = settings(action="move")
    applier = Applier(s)
    for ref in refs(box):
        applier.apply(planned(ref, SPAM, s))
    # Meanwhile a mail client expunged message 0 and new mail arrived.
    write_mbox(tmp_path / "new", [message(i) for i in (1, 2, 3, 7)])
    os.replace(tmp_path / "new", box)
    results = [o.result for o in applier.finish()]
    assert sorted(results) == ["moved", "moved", "moved", "vanished"]
    assert mbox_messages(box) == [message(7)]
    assert stripped(mbox_messages(tmp_path / "mbox.spam")) == stripped(
        [message(i) for i in (1, 2, 3)]
    )


def test_a_failed_source_rewrite_is_finished_by_recover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, spam = tmp_path / "mbox", tmp_path / "mbox.spam"
    write_mbox(box, [message(i) for i in range(4)])
    real_commit = mboxedit._Rewrite.commit

    def commit(self: mboxedit._Rewrite, like: os.stat_result, keep_times: bool) -> None:
        if self.path == box:
            raise OSError(28, "No space left on device")  # the spam mbox got them; the source not
        real_commit(self, like, keep_times)

    monkeypatch.setattr(mboxedit._Rewrite, "commit", commit)
    assert apply_mbox(box, {1: SPAM, 2: SPAM}, settings(action="move")) == ["failed", "failed"]
    assert journal_path(box).exists()
    assert len(mbox_messages(box)) + len(mbox_messages(spam)) == 6  # in both, never in neither
    monkeypatch.setattr(mboxedit._Rewrite, "commit", real_commit)
    assert recover(box)
    assert mbox_messages(box) == [message(0), message(3)]
    assert mbox_messages(spam) == [message(1), message(2)]
    assert not journal_path(box).exists()
    assert not recover(box)


@pytest.mark.parametrize("fail_at", ["spam", "journal-delete"])
def test_recover_after_other_interruptions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    box, spam = tmp_path / "mbox", tmp_path / "mbox.spam"
    write_mbox(box, [message(i) for i in range(3)])
    if fail_at == "spam":
        monkeypatch.setattr(
            mboxedit, "_append_by_rewrite", lambda *a: (_ for _ in ()).throw(OSError(5, "EIO"))
        )
    else:
        monkeypatch.setattr(mboxedit, "_remove_journal", lambda path: None)
    apply_mbox(box, {1: SPAM}, settings(action="move"))
    assert journal_path(box).exists()
    monkeypatch.undo()
    recover(box)
    assert stripped(mbox_messages(box) + mbox_messages(spam)) == stripped(
        [message(i) for i in range(3)]
    )
    assert mbox_messages(box) == (
        [message(0), message(1), message(2)] if fail_at == "spam" else [message(0), message(2)]
    )
    assert not journal_path(box).exists()


def test_leftover_temp_files_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    box = tmp_path / "mbox"
    write_mbox(box, [message(0)])
    (tmp_path / ".mbox.mailfilter.123.M1P2Q3.host.tmp").write_bytes(b"half a copy")
    apply_mbox(box, {0: SPAM}, settings(action="tag"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mbox"]


DELIVER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    path, count = sys.argv[1], int(sys.argv[2])
    for i in range(count):
        lock = path + ".lock"
        while True:  # procmail: dotlock first, then open, then a kernel (fcntl) lock
            try:
                os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                break
            except FileExistsError:
                time.sleep(0.005)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        body = f"From: d{i}@example.com\\nSubject: delivered {i}\\n\\nbody {i}\\n\\n"
        os.write(fd, f"From d{i}@example.com Mon Jan  1 00:00:00 2024\\n{body}".encode())
        os.fsync(fd)
        os.close(fd)
        os.unlink(lock)
        time.sleep(0.002)
    """
)


def test_delivery_during_mbox_rewrites_loses_nothing(tmp_path: Path) -> None:
    box = tmp_path / "mbox"
    # Big enough that each locked rewrite takes a while: deliveries pile up behind the lock.
    originals = [message(i) + b"filler line\n" * 300 for i in range(60)]
    write_mbox(box, originals)
    agent = subprocess.Popen([sys.executable, "-c", DELIVER, str(box), "150"])
    try:
        rounds = 0
        while agent.poll() is None or rounds < 3:
            # Round 0 moves every third original; later rounds re-tag everything with flipping
            # verdicts, so every round rewrites the whole mbox while deliveries keep coming.
            s = settings(action="tag" if rounds else "move")
            applier = Applier(s)
            for n, ref in enumerate(refs(box)):
                raw = ref.read()
                spam = (
                    b"Subject: message" in raw
                    and int(raw.split(b"message ")[1][:2].strip()) % 3 == 0
                )
                if rounds:
                    spam = (n + rounds) % 2 == 0
                verdict = SPAM if spam else HAM
                applier.apply(plan(ref, verdict, raw, content_hash(raw), s, len(raw)))
            applier.finish()
            rounds += 1
    finally:
        agent.wait(timeout=60)
    assert agent.returncode == 0
    everything = mbox_messages(box) + mbox_messages(tmp_path / "mbox.spam")
    delivered = [strip_our_headers(m) for m in everything if b"Subject: delivered" in m]
    assert len(delivered) == 150 and len(set(delivered)) == 150
    assert stripped([m for m in everything if b"Subject: message" in m]) == stripped(originals)
    assert len(mbox_messages(tmp_path / "mbox.spam")) == 20  # 0, 3, ..., 57


def test_a_file_rewritten_after_it_was_read_is_not_tagged(maildir: Path) -> None:
    ref = refs(maildir)[0]
    p = planned(ref, SPAM, settings(action="tag"))
    assert isinstance(ref, MaildirMessage)
    rewritten = ref.path.read_bytes() + b"\nedited by another program\n"
    ref.path.write_bytes(rewritten)
    outcome = Applier(settings(action="tag")).apply(p)
    assert outcome is not None and outcome.result == "changed"
    assert ref.path.read_bytes() == rewritten  # the other program's bytes, untouched
