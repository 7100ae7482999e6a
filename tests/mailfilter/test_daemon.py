"""The daemon: batches arrivals, tags or moves once, never loops on its own rewrites, stops clean.

End to end it runs as a real process on a Maildir and an mbox, signalled and notified as systemd
does it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailfilter.daemon import Daemon, Job, watched_mailboxes
from mailfilter.headers import strip_our_headers
from mailfilter.mboxlock import MboxLock
from mailfilter.sdnotify import sd_notify, watchdog_interval
from mailfilter.settings import Settings
from mailfilter.state import State

REPO = Path(__file__).resolve().parents[2]


def message(i: int, spam: bool = False) -> bytes:
    subject = f"cheap prize offer {i}" if spam else f"meeting notes {i}"
    return (
        f"From: sender{i}@example.com\nTo: me@example.org\nSubject: {subject}\n"
        f"Message-ID: <{i}.{int(spam)}@example.com>\n\nHello,\nitem {i}.\n"
    ).encode()


def make_maildir(root: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def deliver(maildir: Path, name: str, raw: bytes) -> Path:
    """As an MDA does: write into tmp/, then rename into new/."""
    tmp = maildir / "tmp" / name
    tmp.write_bytes(raw)
    target = maildir / "new" / name
    os.rename(tmp, target)
    return target


def append_mbox(path: Path, raw: bytes) -> None:
    """Append under the dotlock + fcntl lock, as procmail does."""
    with MboxLock(path, timeout=30, create=True) as lock:
        end = os.lseek(lock.fd, 0, os.SEEK_END)
        sep = b"\n" if end else b""
        os.write(lock.fd, sep + b"From sender@example.com Thu Jan  1 00:00:00 2025\n" + raw)


class FakeEngine:
    """Spam when the text says "prize"; counts the texts it was asked to score."""

    threshold = 0.5
    model_id = "fake0000model0001"

    def __init__(self) -> None:
        self.calls = 0

    def score_texts(self, texts: list[str]) -> list[float]:
        self.calls += len(texts)
        return [0.9 if "prize" in t else 0.1 for t in texts]


@pytest.fixture
def daemon_for(tmp_path: Path) -> Iterator[Callable[..., tuple[Daemon, FakeEngine]]]:
    """A Daemon wired to a fake engine, driven batch by batch (no threads, no signals)."""
    opened: list[State] = []

    def make(**kw: object) -> tuple[Daemon, FakeEngine]:
        settings = Settings(state_path=tmp_path / "state.db", **kw)  # type: ignore[arg-type]
        engine = FakeEngine()
        daemon = Daemon(lambda: settings, lambda s: engine)
        daemon.current = (settings, engine)
        daemon.mailboxes = watched_mailboxes(settings)
        daemon.state = State.open(settings.resolved_state_path())
        opened.append(daemon.state)
        return daemon, engine

    yield make
    for state in opened:
        state.close()


def files(maildir: Path) -> list[Path]:
    return sorted(p for p in maildir.rglob("*") if p.is_file() and p.parent.name in ("new", "cur"))


def test_a_batch_tags_new_mail_once_and_ignores_its_own_rewrites(
    tmp_path: Path, daemon_for: Callable[..., tuple[Daemon, FakeEngine]]
) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    daemon, engine = daemon_for(action="tag", mailboxes=[maildir])
    paths = [deliver(maildir, f"{i}.host", message(i, spam=i % 2 == 0)) for i in range(4)]
    daemon.process([Job("file", p) for p in paths])
    assert engine.calls == 4
    tagged = files(maildir)
    assert len(tagged) == 4
    for path in tagged:
        data = path.read_bytes()
        assert b"X-Mailfilter-Score:" in data
        assert (b"X-Spam-Flag: YES" in data) == (b"prize" in data)
    # The rewrite (tmp/ swapped into new/) shows up as events: nothing is scored again.
    daemon.process([Job("file", p) for p in tagged])
    os.rename(tagged[0], maildir / "cur" / (tagged[0].name + ":2,S"))  # the user reads one
    daemon.process([Job("file", p) for p in files(maildir)])
    assert engine.calls == 4


def test_move_sends_spam_to_junk_and_junk_and_trash_are_not_watched(
    tmp_path: Path, daemon_for: Callable[..., tuple[Daemon, FakeEngine]]
) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    junk, trash = make_maildir(maildir / ".Junk"), make_maildir(maildir / ".Trash")
    daemon, engine = daemon_for(action="move", mailboxes=[maildir])
    spam, ham = deliver(maildir, "1.host", message(1, True)), deliver(maildir, "2.host", message(2))
    daemon.process([Job("file", spam), Job("file", ham)])
    assert (junk / "new" / "1.host").read_bytes() == message(1, True)
    assert ham.read_bytes() == message(2) and not spam.exists()
    in_trash = deliver(trash, "3.host", message(3, True))
    daemon.process([Job("file", junk / "new" / "1.host"), Job("file", in_trash)])
    assert engine.calls == 2 and in_trash.exists()


def test_the_daemon_records_corrections_when_the_user_moves_mail(
    tmp_path: Path, daemon_for: Callable[..., tuple[Daemon, FakeEngine]]
) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    junk = make_maildir(maildir / ".Junk")
    daemon, _ = daemon_for(action="move", mailboxes=[maildir])
    spam, ham = deliver(maildir, "1.host", message(1, True)), deliver(maildir, "2.host", message(2))
    daemon.process([Job("file", spam), Job("file", ham)])
    # The user rescues the "spam" from Junk and files the missed "ham" as spam.
    rescued = maildir / "cur" / "1.host:2,S"
    os.rename(junk / "new" / "1.host", rescued)
    junked = junk / "cur" / "2.host:2,S"
    os.rename(ham, junked)
    daemon.process([Job("file", rescued), Job("file", junked)])
    assert daemon.state is not None
    labels = {lab.label for lab in daemon.state.labels(source="correction")}
    assert labels == {"ham", "spam"}
    assert rescued.read_bytes() == message(1, True)  # and the rescued mail is not moved back
    daemon.process([Job("file", rescued)])
    assert rescued.exists()


def test_mail_filtered_through_the_socket_is_not_scored_again_on_delivery(
    tmp_path: Path, daemon_for: Callable[..., tuple[Daemon, FakeEngine]]
) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    daemon, engine = daemon_for(action="move", mailboxes=[maildir])
    answer = daemon.check(message(5, True), want_message=True)
    assert answer.label == "spam" and answer.message is not None
    assert strip_our_headers(answer.message) == message(5, True)
    delivered = deliver(maildir, "5.host", answer.message)
    daemon.process([daemon.queue.get_nowait(), Job("file", delivered)])  # record, then event
    assert engine.calls == 1  # the socket's score was reused
    assert (maildir / ".Junk" / "new" / "5.host").exists()


def test_sd_notify_sends_datagrams_only_under_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
    for address in (str(tmp_path / "notify"), "@mailfilter-test-" + str(os.getpid())):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(address.replace("@", "\0", 1))
        with sock:
            monkeypatch.setenv("NOTIFY_SOCKET", address)
            assert sd_notify("STATUS=hello")
            assert sock.recv(100) == b"STATUS=hello"
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None


# --- end to end: a real daemon process ----------------------------------------------------------


class Notifications:
    """The test's NOTIFY_SOCKET: every datagram the daemon sends, in order."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen: list[str] = []

    def wait_for(self, prefix: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.seen.append(data)
            for line in data.splitlines():
                if line.startswith(prefix):
                    return line
        raise AssertionError(f"no {prefix!r} from the daemon; got {self.seen[-5:]}")


def poll(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start_daemon(tmp_path: Path, notify: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAILFILTER_")}
    env.update(
        PYTHONPATH=str(REPO),
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
        NOTIFY_SOCKET=str(notify),
        WATCHDOG_USEC="1000000",
    )
    cmd = [sys.executable, "-c", "from mailfilter.cli import main; main()"]
    log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115  (the child holds it)
    with log:
        return subprocess.Popen(
            [*cmd, "--config", str(tmp_path / "config.toml"), "daemon"], env=env, stderr=log
        )


def all_tagged(paths: list[Path]) -> bool:
    return all(b"X-Mailfilter-Score:" in p.read_bytes() for p in paths)


def maildir_messages(maildir: Path) -> dict[bytes, bytes]:
    """Message-ID line -> bytes, asserting every message is there once."""
    found: dict[bytes, bytes] = {}
    for path in files(maildir):
        data = path.read_bytes()
        key = next(line for line in data.splitlines() if line.startswith(b"Message-ID:"))
        assert key not in found, f"duplicate {key!r}"
        found[key] = data
    return found


@pytest.mark.slow
def test_the_daemon_process_end_to_end(tmp_path: Path, tiny_checkpoint: Path) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    mbox = tmp_path / "inbox.mbox"
    mbox.write_bytes(b"")
    (tmp_path / "config.toml").write_text(
        f'mailboxes = ["{maildir}", "{mbox}"]\naction = "tag"\nthreshold = 0.0\n'
        f'batch_window = 0.2\ncheckpoint = "{tiny_checkpoint}"\n'
        f'state_path = "{tmp_path / "state.db"}"\n'
    )
    early = deliver(maildir, "0.host", message(0))  # arrived while the daemon was down
    notify = Notifications(tmp_path / "notify.sock")
    proc = start_daemon(tmp_path, tmp_path / "notify.sock")
    sent: dict[int, bytes] = {0: message(0)}
    try:
        notify.wait_for("READY=1")
        sock = tmp_path / "run" / "mailfilter" / "mailfilter.sock"
        assert sock.stat().st_mode & 0o777 == 0o600
        poll(lambda: all_tagged([early]))  # the start-up scan
        late = deliver(maildir, "1.host", message(1))
        sent[1] = message(1)
        append_mbox(mbox, message(100))
        poll(lambda: all_tagged([late]) and b"X-Mailfilter-Score:" in mbox.read_bytes())
        notify.wait_for("WATCHDOG=1", timeout=10)
        proc.send_signal(signal.SIGHUP)
        notify.wait_for("STATUS=reloaded", timeout=60)
        for i in range(2, 42):  # a burst, and SIGTERM in the middle of it
            sent[i] = message(i)
            deliver(maildir, f"{i}.host", sent[i])
            if i == 25:  # the daemon is at work on the burst...
                poll(lambda: any(b"X-Mailfilter" in p.read_bytes() for p in files(maildir)
                                 if p.name.startswith(("2.", "3.", "4."))))  # fmt: skip
            if i == 30:  # ...and is told to stop while mail keeps coming
                proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        notify.wait_for("STOPPING=1", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not sock.exists()
    found = maildir_messages(maildir)  # nothing lost, nothing doubled, nothing corrupted
    assert sorted(strip_our_headers(d) for d in found.values()) == sorted(sent.values())

    for i in range(42, 45):  # more mail while it is down
        sent[i] = message(i)
        deliver(maildir, f"{i}.host", sent[i])
    proc = start_daemon(tmp_path, tmp_path / "notify.sock")
    try:
        notify.wait_for("READY=1")
        poll(lambda: len(maildir_messages(maildir)) == len(sent) and all_tagged(files(maildir)))
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    found = maildir_messages(maildir)
    assert sorted(strip_our_headers(d) for d in found.values()) == sorted(sent.values())
    assert mbox.read_bytes().count(b"X-Mailfilter-Score:") == 1
    log = (tmp_path / "daemon.log").read_bytes()
    assert b": tagged (" in log and b": unchanged (" not in log  # no message scored twice
