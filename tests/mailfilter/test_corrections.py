"""A message the user moves against the model's verdict becomes a labeled correction."""

from __future__ import annotations

import json
import mailbox
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailfilter.cli import app
from mailfilter.corrections import place_of, reconcile, record_move, unique_part
from mailfilter.learning import model_text
from mailfilter.mailboxes import detect
from mailfilter.scan import scan
from mailfilter.settings import Settings
from mailfilter.state import State, content_hash
from tests.mailfilter.fakes import FakeEngine


def message(i: int, spam: bool = False) -> bytes:
    subject = f"special offer {i}" if spam else f"meeting notes {i}"
    return (
        f"From: sender{i}@example.com\nTo: me@example.org\nSubject: {subject}\n"
        f"Message-ID: <{i}@example.com>\n\nHello, item {i}.\n"
    ).encode()




@pytest.fixture
def state(tmp_path: Path) -> State:
    return State.open(tmp_path / "state.sqlite3")


def scanned_maildir(tmp_path: Path, state: State, action: str = "move") -> Path:
    """~/Maildir with 3 ham and 2 spam, scanned: with `move`, the spam is now in .Junk."""
    root = tmp_path / "Maildir"
    md = mailbox.Maildir(root, create=True)
    for i in range(5):
        md.add(message(i, spam=i >= 3))
    md.add_folder("Archive")
    md.add_folder("Junk")
    md.add_folder("Trash")
    settings = Settings(action=action, spam_folder=".Junk")
    scan([detect(root)], settings, FakeEngine(), state=state)
    return root


def files(folder: Path) -> list[Path]:
    return sorted(p for sub in ("new", "cur") for p in (folder / sub).iterdir())


def move(src: Path, folder: Path, flags: str = "S") -> Path:
    """What a mail client does: rename into the other folder's cur/, with flags."""
    dest = folder / "cur" / f"{src.name.split(':')[0]}:2,{flags}"
    os.rename(src, dest)
    return dest


def test_spam_moved_out_of_junk_is_a_ham_correction(tmp_path: Path, state: State) -> None:
    root = scanned_maildir(tmp_path, state)
    junk = files(root / ".Junk")
    assert len(junk) == 2
    moved = move(junk[0], root)
    correction = record_move(state, moved, ".Junk")
    assert correction is not None
    assert (correction.label, correction.verdict, correction.was, correction.now) == (
        "ham", "spam", ".Junk", "INBOX",
    )  # fmt: skip
    assert correction.new and correction.model_id == FakeEngine.model_id
    (label,) = state.labels(source="correction")
    assert label.label == "ham" and label.text == model_text(moved.read_bytes())
    assert label.content_hash == content_hash(moved.read_bytes())


def test_ham_moved_into_junk_is_a_spam_correction_found_by_reconcile(
    tmp_path: Path, state: State
) -> None:
    root = scanned_maildir(tmp_path, state)
    move(files(root)[0], root / ".Junk")
    (correction,) = reconcile(state, root, ".Junk")
    assert (correction.label, correction.verdict, correction.now) == ("spam", "ham", ".Junk")
    assert reconcile(state, root, ".Junk") == []  # once is enough: the move was noted


def test_moves_the_model_agreed_with_or_to_trash_are_not_corrections(
    tmp_path: Path, state: State
) -> None:
    root = scanned_maildir(tmp_path, state)
    inbox = files(root)
    move(inbox[0], root / ".Archive")  # ham filed away: the model agreed
    move(inbox[1], root / ".Trash")  # deleted: says nothing
    move(files(root / ".Junk")[0], root / ".Trash")  # spam deleted: says nothing
    assert reconcile(state, root, ".Junk") == []
    assert state.labels() == []


def test_a_copy_out_of_junk_is_not_a_move(tmp_path: Path, state: State) -> None:
    root = scanned_maildir(tmp_path, state)
    src = files(root / ".Junk")[0]
    os.link(src, root / "cur" / f"{src.name.split(':')[0]}:2,S")  # IMAP COPY by hard link
    assert reconcile(state, root, ".Junk") == []
    assert record_move(state, root / "cur" / f"{src.name.split(':')[0]}:2,S") is None


def test_the_user_changing_their_mind_back_replaces_the_label(tmp_path: Path, state: State) -> None:
    root = scanned_maildir(tmp_path, state)
    out = move(files(root / ".Junk")[0], root)
    assert record_move(state, out) is not None
    back = move(out, root / ".Junk", flags="")
    correction = record_move(state, back)
    assert correction is not None and correction.label == "spam"
    assert [lb.label for lb in state.labels()] == ["spam"]


def test_a_tagged_message_is_matched_by_hash_and_learned_without_our_headers(
    tmp_path: Path, state: State
) -> None:
    root = scanned_maildir(tmp_path, state, action="tag")
    spam = next(p for p in files(root) if b"X-Spam-Flag: YES" in p.read_bytes())
    moved = move(spam, root / ".Junk")  # tag mode: spam stays in INBOX; filing it is agreement
    assert record_move(state, moved) is None
    ham = next(p for p in files(root) if b"X-Spam-Flag" not in p.read_bytes())
    (correction,) = [c for c in [record_move(state, move(ham, root / ".Junk"))] if c]
    (label,) = state.labels()
    assert "X-Spam" not in label.text and correction.label == "spam"


def test_a_message_whose_bytes_changed_is_matched_by_its_maildir_name(
    tmp_path: Path, state: State
) -> None:
    root = scanned_maildir(tmp_path, state)
    src = files(root / ".Junk")[0]
    dest = root / "cur" / f"{src.name.split(':')[0]}:2,S"
    dest.write_bytes(b"X-Keywords: $NotJunk\n" + src.read_bytes())  # a client rewrote it
    src.unlink()
    correction = record_move(state, dest)
    assert correction is not None and correction.label == "ham"
    assert correction.content_hash == content_hash(dest.read_bytes())


def test_corrections_never_change_the_mail(tmp_path: Path, state: State) -> None:
    root = scanned_maildir(tmp_path, state)
    ham = files(root)[0]
    move(files(root / ".Junk")[0], root)
    move(ham, root / ".Junk")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    assert len(reconcile(state, root, ".Junk")) == 2
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    assert after == before


def test_names_and_places() -> None:
    assert unique_part("1700000000.M1P2.host,S=1234:2,FS") == "1700000000.M1P2.host"
    assert place_of(".Junk.Old", "Junk") == "spam"
    assert place_of(".Trash", ".Junk") == "trash"
    assert place_of("INBOX", ".Junk") == "ham"


def test_learn_corrections_lists_them(tmp_path: Path, state: State) -> None:
    root = scanned_maildir(tmp_path, state)
    move(files(root / ".Junk")[0], root)
    state.close()
    env = {
        "MAILFILTER_STATE_PATH": str(tmp_path / "state.sqlite3"),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    runner = CliRunner()
    result = runner.invoke(app, ["learn", "--corrections", "--maildir", str(root)], env=env)
    assert result.exit_code == 0, result.output
    assert "ham" in result.output and "spam (0.9900)" in result.output
    result = runner.invoke(app, ["learn", "--corrections", "--json"], env=env)
    (row,) = json.loads(result.output)
    assert row["label"] == "ham" and row["model_id"] == FakeEngine.model_id
