"""A scan killed with SIGKILL at any instant loses no message and leaves no duplicate behind.

Each kill runs this file as a driver process (`python test_scan_kill.py DRIVER ...`): a real scan
of a real Maildir++ tree or mbox, with a fake scorer so that a process starts in well under a
second (importing torch takes several) and its time goes into reading and changing mail. The
driver prints a line per message handled; the test waits for a random number of them, sleeps a
random fraction of a message's time (or of the final mbox rewrite), and kills it. Then it checks
the mail as the kill left it, finishes the job with a clean scan, and checks again.
"""

from __future__ import annotations

import mailbox
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.mailfilter.fakes import FakeEngine

REPO = Path(__file__).resolve().parents[2]
KILLS_PER_CASE = 14  # x 4 cases = 56 kills
SEED = 20240601




def run_scan(mailbox_path: Path, state_path: Path, action: str, progress: Any = None) -> Any:
    from mailfilter.mailboxes import detect
    from mailfilter.scan import scan
    from mailfilter.settings import Settings
    from mailfilter.state import State

    settings = Settings(action=action, state_path=state_path)  # type: ignore[arg-type]
    state = State.open(state_path)
    try:
        return scan(
            [detect(mailbox_path)],
            settings,
            FakeEngine(),
            state=state,
            progress=progress,
            lock_timeout=10.0,
        )
    finally:
        state.close()


def driver(mailbox_path: str, state_path: str, action: str) -> None:
    """The process that gets killed: a scan printing `m` per message handled, `w` when an mbox
    rewrite starts (every change to an mbox happens from then on), `a` when the mbox changes are
    all applied, `done` at the end."""
    import mailfilter.actions as actions
    import mailfilter.mboxedit as mboxedit

    def say(what: str) -> None:
        sys.stdout.write(what + "\n")
        sys.stdout.flush()

    rewrite_init = mboxedit._Rewrite.__init__

    def announced(self: Any, path: Path) -> None:
        say("w")
        rewrite_init(self, path)

    mboxedit._Rewrite.__init__ = announced  # type: ignore[method-assign]
    apply_changes = actions.apply_changes

    def applied(*args: Any, **kw: Any) -> Any:
        try:
            return apply_changes(*args, **kw)
        finally:
            say("a")

    actions.apply_changes = applied
    from mailfilter.scan import scan  # noqa: F401  (import before saying we are ready)

    say("ready")
    run_scan(Path(mailbox_path), Path(state_path), action, lambda n: say("m"))
    say("done")


def message(i: int) -> bytes:
    subject = f"special offer {i}" if i % 2 == 0 else f"project notes {i}"
    text = (
        f"From: sender{i}@example.com\nTo: me@example.org\nSubject: {subject}\n"
        f"Message-ID: <{i}@example.com>\n\nHello,\nFrom the team: item {i}.\n"
        + "Some more body text to make the message a realistic size.\n"
        * 40
    )
    return text.encode().replace(b"\n", b"\r\n" if i == 5 else b"\n")


def build(root: Path, kind: str, n: int = 30) -> Path:
    """A Maildir++ tree (INBOX + .Lists, flags, Dovecot S= names) or an mbox; half is spam."""
    root.mkdir()
    if kind == "mbox":
        box = mailbox.mbox(root / "inbox")
        for i in range(n):
            box.add(message(i))
        box.close()
        return root / "inbox"
    md = mailbox.Maildir(root / "Maildir")
    lists = md.add_folder("Lists")
    for i in range(n):
        m = mailbox.MaildirMessage(message(i))
        if i % 3:
            m.set_subdir("cur")
            m.set_flags("S" if i % 3 == 1 else "FS")
        (lists if i % 4 == 0 else md).add(m)
    files = sorted(p for p in (root / "Maildir").rglob("*") if p.parent.name in ("cur", "new"))
    for old in files[::3]:  # Dovecot-style names carry the size: tagging must fix it
        base, colon, info = old.name.partition(":")
        old.rename(old.with_name(f"{base},S={old.stat().st_size}{colon}{info}"))
    return root / "Maildir"


def inventory(root: Path) -> Counter[tuple[bytes, str]]:
    """Every delivered message under root, our headers stripped, with its Maildir flags."""
    from mailfilter.headers import strip_our_headers
    from mailfilter.mailboxes import maildir_flags

    found: Counter[tuple[bytes, str]] = Counter()
    for path in root.rglob("*"):
        if path.is_file() and path.parent.name in ("cur", "new"):
            found[strip_our_headers(path.read_bytes()), maildir_flags(path.name)] += 1
        elif path.is_file() and path.name in ("inbox", "inbox.spam"):
            box = mailbox.mbox(path)
            for key in box.iterkeys():
                found[strip_our_headers(box.get_bytes(key)), ""] += 1
            box.close()
    return found


def spam_placed(root: Path, kind: str, action: str) -> bool:
    """After a finished scan: spam is tagged YES (tag) or in the spam folder/mbox (move)."""
    if action == "tag":
        files = [p for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")]
        if kind == "mbox":
            box = mailbox.mbox(root / "inbox")
            raws = [box.get_bytes(k) for k in box.iterkeys()]
        else:
            raws = [p.read_bytes() for p in files]
        return all((b"offer" in r) == (b"X-Spam-Flag: YES" in r) for r in raws)
    if kind == "mbox":
        spam = mailbox.mbox(root / "inbox.spam")
        return len(spam) == 15 and all(b"offer" in spam.get_bytes(k) for k in spam.iterkeys())
    junk = [p for p in (root / "Maildir" / ".Junk").rglob("*") if p.parent.name in ("cur", "new")]
    return len(junk) == 15 and all(b"offer" in p.read_bytes() for p in junk)


def start_driver(mailbox_path: Path, state_path: Path, action: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, __file__, "DRIVER", str(mailbox_path), str(state_path), action]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=REPO, env=env)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def calibrate(template: Path, work: Path, kind: str, action: str) -> tuple[int, float, float]:
    """Messages handled, seconds per message, seconds the mbox changes take (from `w` to `a`)."""
    shutil.copytree(template, work)
    mailbox_path = work / ("inbox" if kind == "mbox" else "Maildir")
    proc = start_driver(mailbox_path, work / "state.db", action)
    assert proc.stdout is not None
    start = last = time.monotonic()
    lines, rewrite, applied = 0, 0.0, 0.0
    while (line := proc.stdout.readline()) in (b"m\n", b"w\n", b"a\n"):
        now = time.monotonic()
        if line == b"m\n":
            lines, last = lines + 1, now
        elif line == b"w\n":
            rewrite = rewrite or now
        else:
            applied = now
    assert line == b"done\n" and proc.wait() == 0
    tail = applied - rewrite if applied else 0.0
    shutil.rmtree(work)
    return lines, (last - start) / max(lines, 1), tail


def wait_for_lines(proc: subprocess.Popen[bytes], messages: int, until_rewrite: bool) -> None:
    """Read the driver's lines: `messages` of them, or on to the start of an mbox rewrite."""
    assert proc.stdout is not None
    seen = 0
    while until_rewrite or seen < messages:
        line = proc.stdout.readline()
        if line == b"m\n":
            seen += 1
        elif line not in (b"w\n", b"a\n") or until_rewrite:
            return  # done, killed, or the rewrite we were waiting for has begun


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "action"), [("maildir", "tag"), ("maildir", "move"), ("mbox", "tag"), ("mbox", "move")]
)
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    tmp_path: Path, kind: str, action: str
) -> None:
    from mailfilter.mboxedit import journal_path

    rng = random.Random(f"{SEED}-{kind}-{action}")
    template = tmp_path / "template"
    mailbox_path = build(template, kind)
    originals = inventory(template)
    assert sum(originals.values()) == 30
    count, per_message, tail = calibrate(template, tmp_path / "calibration", kind, action)
    assert count == 30
    landed_in_tail = 0
    for attempt in range(KILLS_PER_CASE):
        work = tmp_path / f"kill{attempt}"
        shutil.copytree(template, work)
        path = work / mailbox_path.relative_to(template)
        proc = start_driver(path, work / "state.db", action)
        assert proc.stdout is not None
        wait_for = rng.randint(0, count - 1)
        if kind == "mbox" and rng.random() < 0.6:
            wait_for = count  # every mbox change happens after the last message is scored
        wait_for_lines(proc, wait_for, until_rewrite=wait_for == count)
        delay = rng.uniform(0, tail if wait_for == count else per_message)
        landed_in_tail += wait_for == count
        time.sleep(delay)
        proc.kill()
        proc.wait()
        proc.stdout.close()
        what = f"{kind}/{action}, kill {attempt} after {wait_for} messages + {delay * 1000:.1f} ms"

        left = inventory(work)
        assert not originals - left, f"lost a message: {what}"
        extra = left - originals
        if kind == "mbox" and action == "move" and journal_path(path).exists():
            assert set(extra) <= set(originals), f"a half-done move left junk: {what}"
        else:
            assert not extra, f"duplicated a message: {what}"

        report = run_scan(path, work / "state.db", action)  # breaks the dead dotlock, recovers
        assert report.errors == 0, what
        assert inventory(work) == originals, f"not exactly once after the next scan: {what}"
        assert spam_placed(work, kind, action), what
        assert not list(work.rglob("tmp/*.mailfilter")), f"tmp/ not cleaned up: {what}"
        if kind == "mbox":
            names = sorted(p.name for p in work.iterdir() if not p.name.startswith("state.db"))
            assert names == ["inbox", "inbox.spam"][: 1 + (action == "move")], what
        shutil.rmtree(work)
    assert kind != "mbox" or landed_in_tail >= 3


if __name__ == "__main__" and sys.argv[1:2] == ["DRIVER"]:
    driver(*sys.argv[2:5])
