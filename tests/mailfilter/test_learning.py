"""`mailfilter learn` turns the user's own folders into labels, and never touches the mail."""

from __future__ import annotations

import json
import mailbox
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailfilter.cli import app
from mailfilter.headers import tag_message
from mailfilter.learning import LearnError, learn, model_text, retrain_pending
from mailfilter.message import to_text
from mailfilter.state import State, content_hash
from mailfilter.verdict import Verdict


def message(i: int, spam: bool = False) -> bytes:
    subject = f"cheap pills {i}" if spam else f"minutes of meeting {i}"
    return (
        f"From: sender{i}@example.com\nTo: me@example.org\nSubject: {subject}\n"
        f"Message-ID: <{i}.{spam}@example.com>\n\nbody {i}\n"
    ).encode()


def maildir_tree(root: Path, inbox: list[bytes], junk: list[bytes], trash: list[bytes]) -> Path:
    """A Maildir++ root with INBOX, .Junk and .Trash."""
    md = mailbox.Maildir(root, create=True)
    for raw in inbox:
        md.add(raw)
    for name, raws in ((".Junk", junk), (".Trash", trash)):
        folder = md.add_folder(name.lstrip("."))
        for raw in raws:
            folder.add(raw)
    return root


def snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under path: bytes and mtime (the mail must come out exactly as it went in)."""
    out = {}
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(path))] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State.open(tmp_path / "state" / "state.sqlite3")


def test_a_maildir_root_is_ham_but_its_junk_and_trash_are_not(tmp_path: Path, state: State) -> None:
    root = maildir_tree(
        tmp_path / "Maildir", [message(1), message(2)], [message(3, True)], [message(4)]
    )
    report = learn(state, spam=[root / ".Junk"], ham=[root])
    assert report.added == {"spam": 1, "ham": 2}
    labels = {lb.content_hash: lb.label for lb in state.labels()}
    assert labels == {
        content_hash(message(1)): "ham",
        content_hash(message(2)): "ham",
        content_hash(message(3, True)): "spam",
    }


def test_labels_hold_the_model_text_never_the_mail(tmp_path: Path, state: State) -> None:
    root = maildir_tree(tmp_path / "Maildir", [message(1)], [], [])
    learn(state, ham=[root])
    (lb,) = state.labels()
    assert lb.text == to_text(message(1))
    assert lb.source == "learn" and "Message-ID" not in lb.text


def test_our_headers_and_subject_prefix_are_not_learned(tmp_path: Path, state: State) -> None:
    raw = message(7, spam=True)
    tagged = tag_message(raw, Verdict(0.99, 0.5, "spam", "m1"), "[SPAM]")
    md = mailbox.Maildir(tmp_path / "Junk", create=True)
    md.add(tagged)
    md.add(raw)  # the same message, untagged: one label
    report = learn(state, spam=[tmp_path / "Junk"])
    assert report.read["spam"] == 2 and report.added["spam"] == 1
    (lb,) = state.labels()
    assert lb.content_hash == content_hash(raw)
    assert "[SPAM]" not in lb.text and lb.text == model_text(raw)


def test_mbox_single_files_and_directories_of_files(tmp_path: Path, state: State) -> None:
    box = mailbox.mbox(tmp_path / "spam.mbox")
    box.add(message(1, True))
    box.add(message(2, True))
    box.close()
    (tmp_path / "one.eml").write_bytes(message(3, True))
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a").write_bytes(message(4))
    (tmp_path / "dir" / "b").write_bytes(b"\x00\x01 not mail")
    report = learn(
        state, spam=[tmp_path / "spam.mbox", tmp_path / "one.eml"], ham=[tmp_path / "dir"]
    )
    assert report.added == {"spam": 3, "ham": 1}
    assert report.skipped == {"not a message": 1}


def test_a_later_label_replaces_the_earlier_and_relearning_is_a_no_op(
    tmp_path: Path, state: State
) -> None:
    (tmp_path / "m").write_bytes(message(1))
    learn(state, spam=[tmp_path / "m"])
    seq = state.label_seq()
    again = learn(state, spam=[tmp_path / "m"])
    assert again.unchanged == {"spam": 1} and state.label_seq() == seq
    changed = learn(state, ham=[tmp_path / "m"])
    assert changed.relabeled == {"ham": 1} and state.label_seq() > seq
    assert [lb.label for lb in state.labels()] == ["ham"]


def test_a_message_given_as_both_in_one_call_is_kept_as_ham(tmp_path: Path, state: State) -> None:
    (tmp_path / "m").write_bytes(message(1))
    report = learn(state, spam=[tmp_path / "m"], ham=[tmp_path / "m"])
    assert report.conflicts == 1
    assert [lb.label for lb in state.labels()] == ["ham"]


def test_learning_never_changes_the_mail(tmp_path: Path, state: State) -> None:
    root = maildir_tree(tmp_path / "Maildir", [message(1)], [message(2, True)], [message(3)])
    box = mailbox.mbox(tmp_path / "old.mbox")
    box.add(message(5, True))
    box.close()
    before = snapshot(tmp_path / "Maildir"), (tmp_path / "old.mbox").read_bytes()
    learn(state, spam=[root / ".Junk", tmp_path / "old.mbox"], ham=[root])
    assert (snapshot(tmp_path / "Maildir"), (tmp_path / "old.mbox").read_bytes()) == before
    assert not (tmp_path / "old.mbox.lock").exists()


def test_a_path_that_is_no_mailbox_is_an_error(tmp_path: Path, state: State) -> None:
    with pytest.raises(LearnError, match="no such file"):
        learn(state, spam=[tmp_path / "missing"])


def test_retrain_is_pending_only_with_enough_new_labels(tmp_path: Path, state: State) -> None:
    for i in range(3):
        (tmp_path / f"m{i}").write_bytes(message(i))
    learn(state, ham=[tmp_path / f"m{i}" for i in range(3)])
    assert retrain_pending(state, 5) is not None
    assert retrain_pending(state, 3) is None
    state.record_retrain("installed", state.label_seq(), "abc", {})
    assert "no new labels" in (retrain_pending(state, 3) or "")
    assert retrain_pending(state, 3, if_needed=False) is None
    (tmp_path / "m9").write_bytes(message(9))
    learn(state, spam=[tmp_path / "m9"])
    assert retrain_pending(state, 3) is None


def test_a_schema_1_db_is_migrated_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE scored (content_hash TEXT NOT NULL, model_id TEXT NOT NULL, action TEXT NOT"
        " NULL, mailbox TEXT NOT NULL, folder TEXT NOT NULL, key TEXT NOT NULL, score REAL NOT"
        " NULL, verdict TEXT NOT NULL, outcome TEXT NOT NULL, scanned_at REAL NOT NULL,"
        " PRIMARY KEY (content_hash, model_id));"
        "INSERT INTO scored VALUES ('h1','m1','none','/mail','INBOX','cur/1',0.1,'ham','kept',1);"
        "PRAGMA user_version=1;"
    )
    conn.close()
    ro = State.open_readonly(path)
    assert ro is not None and ro.labels() == [] and ro.label_seq() == 0
    ro.close()
    state = State.open(path)
    assert state.known("m1", "none") == {"h1"}
    assert state.conn.execute("PRAGMA user_version").fetchone()[0] == 2
    (tmp_path / "m").write_bytes(message(1))
    learn(state, ham=[tmp_path / "m"])
    assert len(state.labels()) == 1


def test_learn_command_prints_counts_and_json(tmp_path: Path) -> None:
    root = maildir_tree(tmp_path / "Maildir", [message(1)], [message(2, True)], [])
    env = {"MAILFILTER_STATE_PATH": str(tmp_path / "s.sqlite3"), "XDG_CONFIG_HOME": str(tmp_path)}
    runner = CliRunner()
    args = ["learn", "--spam", str(root / ".Junk"), "--ham", str(root)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "spam: read 1, new 1" in result.output
    result = runner.invoke(app, [*args, "--json"], env=env)
    data = json.loads(result.output)
    assert data["unchanged"] == {"spam": 1, "ham": 1} and data["labels"] == {"spam": 1, "ham": 1}
