"""The state DB remembers what a model scored, by content hash that survives our own tagging."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailfilter.headers import tag_message
from mailfilter.state import Record, State, StateError, content_hash
from mailfilter.verdict import Verdict

RAW = b"From: a@example.com\nSubject: hi\n\nbody\n"


def record(digest: str, model: str = "m1", action: str = "tag", outcome: str = "tagged") -> Record:
    return Record(digest, model, action, "/mail", "INBOX", "cur/1:2,S", 0.9, "spam", outcome)


def test_open_creates_a_wal_db_in_a_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "mailfilter" / "state.sqlite3"
    state = State.open(path)
    assert state.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert path.parent.stat().st_mode & 0o777 == 0o700
    state.close()


def test_known_is_per_model_and_action(tmp_path: Path) -> None:
    state = State.open(tmp_path / "s.db")
    state.record([record("h1"), record("h2", model="m2"), record("h3", action="none")])
    assert state.known("m1", "tag") == {"h1"}
    assert state.known("m2", "tag") == {"h2"}
    assert state.known("m1", "move") == set()
    assert state.known("m1", "none") == {"h1", "h3"}  # any scoring satisfies a report-only scan


def test_record_updates_in_place(tmp_path: Path) -> None:
    state = State.open(tmp_path / "s.db")
    state.record([record("h1", action="none", outcome="kept")])
    state.record([record("h1", action="move", outcome="moved")])
    got = state.lookup("h1", "m1")
    assert got is not None and (got.action, got.outcome) == ("move", "moved")
    assert state.conn.execute("SELECT count(*) FROM scored").fetchone()[0] == 1


def test_state_survives_reopening(tmp_path: Path) -> None:
    State.open(tmp_path / "s.db").record([record("h1")])
    assert State.open(tmp_path / "s.db").known("m1", "tag") == {"h1"}


def test_readonly_open_of_a_missing_db_creates_nothing(tmp_path: Path) -> None:
    assert State.open_readonly(tmp_path / "none" / "s.db") is None
    assert not (tmp_path / "none").exists()


def test_readonly_state_reads_but_refuses_to_write(tmp_path: Path) -> None:
    State.open(tmp_path / "s.db").record([record("h1")])
    ro = State.open_readonly(tmp_path / "s.db")
    assert ro is not None and ro.known("m1", "tag") == {"h1"}
    with pytest.raises(StateError):
        ro.record([record("h2")])


def test_content_hash_ignores_our_headers() -> None:
    verdict = Verdict(0.97, 0.5, "spam", "m1")
    assert content_hash(tag_message(RAW, verdict, "[SPAM]")) == content_hash(RAW)
    assert content_hash(RAW + b"x") != content_hash(RAW)


def test_a_corrupt_db_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "s.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match=r"s\.db"):
        State.open(tmp_path / "s.db")


def test_a_db_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StateError, match="newer"):
        State.open(tmp_path / "s.db")
