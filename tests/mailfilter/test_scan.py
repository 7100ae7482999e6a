"""`mailfilter scan` never loses, duplicates or corrupts a message, whatever it meets on the way."""

from __future__ import annotations

import json
import mailbox
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import mailfilter.scan as scan_module
from mailfilter.cli import app, main
from mailfilter.engine import Engine
from mailfilter.headers import strip_our_headers
from mailfilter.mailboxes import MaildirMessage, detect, maildir_flags
from mailfilter.scan import ScanReport, scan
from mailfilter.settings import Settings
from mailfilter.state import State
from models.checkpoint import CheckpointMeta, save_checkpoint
from models.classifier import GPTClassifier
from models.gpt import GPTConfig
from tests.mailfilter.fakes import FakeEngine

KINDS = ["maildir", "maildir++", "mbox"]
ACTIONS = ["none", "tag", "move"]


def message(i: int, spam: bool = False, eol: bytes = b"\n") -> bytes:
    subject = f"special offer {i}" if spam else f"meeting notes {i}"
    text = (
        f"From: sender{i}@example.com\nTo: me@example.org\nSubject: {subject}\n"
        f"Message-ID: <{i}@example.com>\n\nHello,\nFrom the team: item {i}.\n"
    )
    return text.encode().replace(b"\n", eol)




def build(tmp_path: Path, kind: str, n: int = 9) -> Path:
    """A mailbox of `n` messages (every third spam), Maildir flags and CRLF mail among them."""
    raws = [message(i, spam=i % 3 == 0, eol=b"\r\n" if i == 4 else b"\n") for i in range(n)]
    if kind == "mbox":
        box = mailbox.mbox(tmp_path / "inbox")
        for raw in raws:
            box.add(raw)
        box.close()
        return tmp_path / "inbox"
    md = mailbox.Maildir(tmp_path / "Maildir")
    folders = [md]
    if kind == "maildir++":
        folders += [md.add_folder("Lists"), md.add_folder("Lists.python")]
        md.add_folder("Trash").add(message(100, spam=True))  # never scanned
        md.add_folder("Junk").add(message(101, spam=True))
    for i, raw in enumerate(raws):
        m = mailbox.MaildirMessage(raw)
        if i % 2:
            m.set_subdir("cur")
            m.set_flags("RS" if i % 4 == 1 else "F")
        folders[i % len(folders)].add(m)
    return tmp_path / "Maildir"


def inventory(tmp_path: Path) -> list[tuple[bytes, str]]:
    """Every message under tmp_path, with our headers stripped, and its Maildir flags."""
    found: list[tuple[bytes, str]] = []
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path.parent.name in ("cur", "new"):
            found.append((strip_our_headers(path.read_bytes()), maildir_flags(path.name)))
        elif path.is_file() and path.name in ("inbox", "inbox.spam"):
            box = mailbox.mbox(path)
            found += [(strip_our_headers(box.get_bytes(k)), "") for k in box.iterkeys()]
            box.close()
    return sorted(found)


def snapshot(tmp_path: Path) -> dict[str, bytes]:
    """Names and bytes of every file (the state DB aside)."""
    return {
        str(p.relative_to(tmp_path)): p.read_bytes()
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file() and "state" not in p.name
    }


def run(tmp_path: Path, path: Path, action: str, engine: Any = None, **kw: Any) -> ScanReport:
    settings = Settings(action=action, state_path=tmp_path / "state.db")  # type: ignore[arg-type]
    state = State.open(tmp_path / "state.db") if not kw.get("dry_run") else None
    try:
        return scan([detect(path)], settings, engine or FakeEngine(), state=state, **kw)
    finally:
        if state:
            state.close()


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_all_mail_survives_exactly_once(tmp_path: Path, kind: str, action: str) -> None:
    path = build(tmp_path, kind)
    before, tree = inventory(tmp_path), snapshot(tmp_path)
    report = run(tmp_path, path, action)
    assert (report.scanned, report.spam, report.ham, report.errors) == (9, 3, 6, 0)
    assert inventory(tmp_path) == before
    after = snapshot(tmp_path)
    if action == "none":
        assert after == tree
    if action == "tag":
        assert report.changed == {"tagged": 9}
        assert sorted(after) == sorted(tree)  # same names: tagging never moves or renames
        tagged = [v for k, v in after.items() if k.startswith("inbox") or "Junk" not in k]
        assert sum(v.count(b"X-Spam-Flag: YES") for v in tagged) == 3
    if action == "move":
        assert report.changed == {"moved": 3}
        if kind == "mbox":
            assert len(mailbox.mbox(tmp_path / "inbox.spam")) == 3
        else:
            junk = mailbox.Maildir(tmp_path / "Maildir" / ".Junk", create=False)
            assert len(junk) == 3 + (kind == "maildir++") and all(
                b"offer" in junk.get_bytes(k) for k in junk.iterkeys()
            )
    second = run(tmp_path, path, action)
    assert second.scanned == 0 and second.skipped == {"known": 9 - (3 if action == "move" else 0)}
    assert snapshot(tmp_path) == after
    again = run(tmp_path, path, action, rescan=True)
    assert again.errors == 0
    assert snapshot(tmp_path) == after  # a rescan with the same verdicts changes nothing either


@pytest.mark.parametrize("kind", KINDS)
def test_dry_run_changes_nothing_on_disk(tmp_path: Path, kind: str) -> None:
    path = build(tmp_path, kind)
    tree = snapshot(tmp_path)
    for action in ("tag", "move"):
        report = run(tmp_path, path, action, dry_run=True)
        assert report.changed == ({"would tag": 9} if action == "tag" else {"would move": 3})
    assert snapshot(tmp_path) == tree
    assert not (tmp_path / "state.db").exists()


def test_the_real_engine_tags_with_a_tiny_model(tmp_path: Path, checkpoint: Path) -> None:
    path = build(tmp_path, "maildir++")
    before = inventory(tmp_path)
    engine = Engine.load(checkpoint, device="cpu", batch_size=4)
    settings = Settings(action="tag", threshold=0.0, state_path=tmp_path / "s.db")  # all spam
    report = scan([detect(path)], settings, engine, state=State.open(tmp_path / "s.db"))
    assert (report.scanned, report.spam) == (9, 9)
    assert inventory(tmp_path) == before
    assert all(
        b"X-Spam-Flag: YES" in p.read_bytes()
        for p in path.rglob("*")
        if p.parent.name in ("cur", "new") and "Junk" not in str(p) and "Trash" not in str(p)
    )


def test_unreadable_garbage_and_unscorable_mail_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = build(tmp_path, "maildir")
    (path / "cur" / "1700000000.dir.host:2,S").mkdir()  # a directory where a file should be
    (path / "new" / "1700000000.png.host").write_bytes(b"\x89PNG\r\n\x1a\n\x00garbage\xff")
    (path / "new" / "1700000000.bad.host").write_bytes(b"Subject: unscorable\n\nx\n")
    (path / "new" / "1700000000.perm.host").write_bytes(message(50))
    real_read = MaildirMessage.read

    def read(self: MaildirMessage) -> bytes:  # tests run as root: chmod 000 would not stop us
        if "perm" in self.name:
            raise PermissionError(13, "Permission denied", str(self.path))
        return real_read(self)

    monkeypatch.setattr(MaildirMessage, "read", read)
    report = run(tmp_path, path, "tag")
    assert report.scanned == 9
    assert report.skipped == {"unreadable": 2, "not a message": 1, "unscorable": 1}
    assert report.errors == 3  # garbage is not an error; a file we cannot read is
    skipped = {
        r.key.split("/")[1].split(".")[1]: r.detail
        for r in report.results
        if r.outcome == "skipped"
    }
    assert set(skipped) == {"dir", "png", "bad", "perm"}
    assert (path / "new" / "1700000000.png.host").read_bytes().startswith(b"\x89PNG")


def test_mail_vanishing_before_it_is_read_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = build(tmp_path, "maildir")
    real_iter = scan_module.iter_messages
    gone: list[str] = []

    def iter_messages(*args: Any, **kw: Any) -> Iterator[Any]:
        for ref in real_iter(*args, **kw):
            if not gone:
                ref.path.unlink()  # a mail client expunged it between listing and reading
                gone.append(ref.key)
            yield ref

    monkeypatch.setattr(scan_module, "iter_messages", iter_messages)
    report = run(tmp_path, path, "tag")
    assert report.skipped == {"vanished": 1} and report.scanned == 8 and report.errors == 0


@pytest.mark.parametrize("action", ["tag", "move"])
def test_mail_vanishing_mid_scan_is_not_resurrected(tmp_path: Path, action: str) -> None:
    path = build(tmp_path, "maildir")
    moved: list[Path] = []

    def client_moves_it(item: Any) -> None:
        ref = item.ref
        if not moved and b"offer" in ref.path.read_bytes():
            target = path / "cur" / (ref.name + ":2,S")
            ref.path.rename(target)  # the user read it while we were scoring
            moved.extend([ref.path, target])

    before = inventory(tmp_path)
    report = run(tmp_path, path, action, engine=FakeEngine(client_moves_it))
    assert report.not_applied == {"vanished": 1}
    assert report.errors == 0
    assert not moved[0].exists()  # no tagged copy and no move from the old name
    # (the renamed file may be listed, scored and moved itself: cur/ is listed after new/)
    assert [flags for _, flags in inventory(tmp_path)].count("S") == 1 + [
        flags for _, flags in before
    ].count("S")
    assert len(inventory(tmp_path)) == len(before)


def test_too_large_mail_is_scored_but_not_rewritten(tmp_path: Path) -> None:
    path = build(tmp_path, "maildir", n=3)
    big = message(7, spam=True) + b"x" * 600_000
    mailbox.Maildir(path).add(big)
    report = run(tmp_path, path, "tag")
    assert report.scanned == 4 and report.changed == {"tagged": 3}
    assert report.not_applied == {"too large to tag": 1} and report.errors == 0
    assert big in [p.read_bytes() for p in (path / "new").iterdir()]


DELIVER_MAILDIR = textwrap.dedent(
    """
    import os, sys, time
    root, count = sys.argv[1], int(sys.argv[2])
    for i in range(count):
        name = f"{time.time():.6f}.D{i}P{os.getpid()}.deliver"
        spam = "special offer" if i % 2 else "minutes"
        with open(os.path.join(root, "tmp", name), "wb") as f:
            f.write(f"From: d{i}@example.com\\nSubject: {spam} {i}\\n\\ndelivered {i}\\n".encode())
            f.flush()
            os.fsync(f.fileno())
        os.rename(os.path.join(root, "tmp", name), os.path.join(root, "new", name))
        time.sleep(0.003)
    """
)

DELIVER_MBOX = textwrap.dedent(
    """
    import fcntl, os, sys, time
    path, count = sys.argv[1], int(sys.argv[2])
    for i in range(count):
        while True:  # like procmail: dotlock, open, fcntl
            try:
                os.close(os.open(path + ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                break
            except FileExistsError:
                time.sleep(0.005)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        spam = "special offer" if i % 2 else "minutes"
        entry = f"From d Mon Jan  1 00:00:00 2024\\nSubject: {spam} {i}\\n\\nd {i}\\n\\n"
        os.write(fd, entry.encode())
        os.close(fd)
        os.unlink(path + ".lock")
        time.sleep(0.003)
    """
)


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_mail_delivered_during_scans_is_never_lost(tmp_path: Path, kind: str) -> None:
    path = build(tmp_path, kind, n=30)
    before = inventory(tmp_path)
    script = DELIVER_MBOX if kind == "mbox" else DELIVER_MAILDIR
    agent = subprocess.Popen([sys.executable, "-c", script, str(path), "120"])
    scans = 0
    try:
        while agent.poll() is None or scans < 2:
            run(tmp_path, path, ["move", "tag"][scans % 2], rescan=True)
            scans += 1
    finally:
        agent.wait(timeout=60)
    assert agent.returncode == 0
    after = inventory(tmp_path)
    delivered = [raw for raw, _ in after if b"delivered" in raw or b"\n\nd " in raw]
    assert len(delivered) == 120 and len(set(delivered)) == 120
    assert [m for m in after if m in before] == before


# --- the command line ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=64)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    meta = CheckpointMeta(config=config, max_length=64, threshold=0.5)
    return save_checkpoint(GPTClassifier(config).eval(), meta, path)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    for var in ("MAILFILTER_ACTION", "MAILFILTER_THRESHOLD", "MAILFILTER_STATE_PATH"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "xdg-state" / "mailfilter" / "state.sqlite3"


def test_help_documents_the_default_action_and_exit_codes() -> None:
    result = CliRunner().invoke(app, ["scan", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    assert "the default unless the config sets 'action'" in text
    for code in ("0 when", "3 when", "2 for", "70 for"):
        assert code in text


def test_json_report(tmp_path: Path, checkpoint: Path, cli_env: Path) -> None:
    path = build(tmp_path, "maildir")
    args = ["scan", str(path), "--checkpoint", str(checkpoint), "--threshold", "0", "--json"]
    result = CliRunner().invoke(app, [*args, "--action", "move"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {k: report[k] for k in ("action", "dry_run", "scanned", "spam", "ham", "errors")} == {
        "action": "move", "dry_run": False, "scanned": 9, "spam": 9, "ham": 0, "errors": 0,
    }  # fmt: skip
    assert report["changed"] == {"moved": 9} and report["skipped"] == {}
    assert report["seconds"] >= 0 and report["messages_per_second"] >= 0
    first = report["messages"][0]
    assert set(first) == {
        "mailbox",
        "folder",
        "key",
        "outcome",
        "score",
        "verdict",
        "detail",
        "where",
    }
    assert first["outcome"] == "moved" and first["where"].startswith(".Junk/")
    assert cli_env.exists()


def test_default_action_is_report_only_and_dry_run_touches_nothing(
    tmp_path: Path, checkpoint: Path, cli_env: Path
) -> None:
    path = build(tmp_path, "mbox")
    tree = snapshot(tmp_path)
    common = ["scan", str(path), "--checkpoint", str(checkpoint), "--threshold", "0"]
    result = CliRunner().invoke(app, [*common, "--action", "move", "--dry-run"])
    assert result.exit_code == 0, result.output
    plan = [line for line in result.stdout.splitlines() if line.startswith("would move /")]
    assert len(plan) == 9 and "dry run" in result.stdout
    assert snapshot(tmp_path) == tree and not cli_env.exists()
    result = CliRunner().invoke(app, common)
    assert result.exit_code == 0, result.output
    assert "action none" in result.stdout and "scanned" in result.stdout
    assert snapshot(tmp_path) == tree


def test_exit_code_3_when_some_mail_could_not_be_read(
    tmp_path: Path, checkpoint: Path, cli_env: Path
) -> None:
    path = build(tmp_path, "maildir")
    (path / "cur" / "1700000000.dir.host:2,S").mkdir()
    result = CliRunner().invoke(app, ["scan", str(path), "--checkpoint", str(checkpoint)])
    assert result.exit_code == 3
    assert "unreadable 1" in result.stdout


def exit_code_of_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["mailfilter", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0)


@pytest.mark.parametrize("problem", ["no mailbox", "not a mailbox", "no model", "bad prefix"])
def test_exit_code_2_for_usage_and_model_errors(
    tmp_path: Path,
    checkpoint: Path,
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    problem: str,
) -> None:
    path = build(tmp_path, "maildir")
    args = ["scan", str(path), "--checkpoint", str(checkpoint)]
    if problem == "no mailbox":
        args[1] = str(tmp_path / "nowhere")
    elif problem == "not a mailbox":
        (tmp_path / "notes.txt").write_text("hello\n")
        args[1] = str(tmp_path / "notes.txt")
    elif problem == "no model":
        args[3] = str(tmp_path / "missing.safetensors")
    else:
        monkeypatch.setenv("MAILFILTER_SUBJECT_PREFIX", "[SPÄM]")
    tree = snapshot(tmp_path)
    assert exit_code_of_main(monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailfilter: error: ") and err.count("\n") == 1
    assert snapshot(tmp_path) == tree


def test_bad_flags_are_usage_errors() -> None:
    result = CliRunner().invoke(app, ["scan", "x", "--action", "delete"])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    "args", [["scan", "x", "--bogus"], ["scan", "x", "--action", "delete"], ["nosuchcommand"]]
)
def test_the_console_script_reports_bad_flags_as_usage_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert exit_code_of_main(monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and ("No such" in err or "Invalid value" in err), err


def test_mail_the_user_labeled_is_left_alone_even_by_a_new_model(tmp_path: Path) -> None:
    from mailfilter.state import Label, content_hash

    path = build(tmp_path, "maildir", n=3)  # message 0 is "spam" to the fake engine
    spam_raw = message(0, spam=True)
    state = State.open(tmp_path / "state.db")
    state.add_labels([Label(content_hash=content_hash(spam_raw), label="ham", source="learn",
                            origin=str(path), text="")])
    state.close()
    before = snapshot(tmp_path)
    report = run(tmp_path, path, "move")
    assert report.spam == 0 and report.scanned == 2  # the labeled message was not even scored
    assert {k: v for k, v in snapshot(tmp_path).items() if "Junk" not in k} == before


def test_scan_messages_acts_on_a_score_given_before_without_the_model(tmp_path: Path) -> None:
    import mailbox as mb

    from mailfilter.mailboxes import detect, iter_messages
    from mailfilter.scan import scan_messages
    from mailfilter.state import content_hash

    md = mb.Maildir(tmp_path / "Maildir")
    spam = b"From: a@example.com\nSubject: hello\n\nnothing the fake engine calls spam\n"
    ham = b"From: b@example.com\nSubject: hi\n\nplain ham\n"
    md.add(spam)
    md.add(ham)
    found = list(iter_messages(detect(tmp_path / "Maildir"), lambda *a: None))
    scored: list[bytes] = []

    class Counting(FakeEngine):
        def score_messages(self, items, raw_of, chunk_size=256):  # type: ignore[no-untyped-def]
            for s in super().score_messages(items, raw_of, chunk_size):
                scored.append(s.item.ref.read())
                yield s

    known: set[str] = set()
    report = scan_messages(
        found, Settings(action="move"), Counting(), known=known,  # type: ignore[call-arg]
        scored_before=lambda digest: 0.99 if digest == content_hash(spam) else None,
    )
    assert report.spam == 1 and report.ham == 1 and scored == [ham]
    assert [p.read_bytes() for p in (tmp_path / "Maildir/.Junk/new").iterdir()] == [spam]
