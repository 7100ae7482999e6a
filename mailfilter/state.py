"""The state DB (SQLite, WAL): which messages a model has scored, with what result.

A message is known by the sha256 of its bytes with our own headers stripped, so a message we
tagged is still recognised, and one the user moved to another folder is not scored again (which
is also what keeps a scan from moving a message the user took out of Junk straight back).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mailfilter.headers import strip_our_headers

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS scored (
    content_hash TEXT NOT NULL,
    model_id     TEXT NOT NULL,
    action       TEXT NOT NULL,
    mailbox      TEXT NOT NULL,
    folder       TEXT NOT NULL,
    key          TEXT NOT NULL,
    score        REAL NOT NULL,
    verdict      TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    scanned_at   REAL NOT NULL,
    PRIMARY KEY (content_hash, model_id)
);
"""


class StateError(Exception):
    """The state DB cannot be opened, read or written."""


def content_hash(raw: bytes) -> str:
    """sha256 of a message with our headers stripped: the same before and after tagging."""
    return hashlib.sha256(strip_our_headers(raw)).hexdigest()


@dataclass(frozen=True)
class Record:
    """One scored message, as the state DB keeps it."""

    content_hash: str
    model_id: str
    action: str
    mailbox: str
    folder: str
    key: str
    score: float
    verdict: str
    outcome: str


class State:
    """A connection to the state DB; read-only ones never create or change anything."""

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly

    @classmethod
    def open(cls, path: Path) -> State:
        """Open (creating it and its directory, 0700) the state DB for writing."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = sqlite3.connect(path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(f"state DB {path} is from a newer mailfilter (schema {version})")
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as e:
            raise StateError(f"cannot open state DB {path}: {e}") from e
        return cls(conn, path, readonly=False)

    @classmethod
    def open_readonly(cls, path: Path) -> State | None:
        """Open an existing state DB read-only (for --dry-run); None when there is none."""
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
            conn.execute("SELECT 1 FROM scored LIMIT 1")
        except sqlite3.Error as e:
            raise StateError(f"cannot read state DB {path}: {e}") from e
        return cls(conn, path, readonly=True)

    def known(self, model_id: str, action: str) -> set[str]:
        """Hashes this model already scored under `action` (any action counts for `none`)."""
        sql = "SELECT content_hash FROM scored WHERE model_id = ?"
        args: tuple[str, ...] = (model_id,)
        if action != "none":
            sql += " AND action = ?"
            args = (model_id, action)
        try:
            return {row[0] for row in self.conn.execute(sql, args)}
        except sqlite3.Error as e:
            raise StateError(f"cannot read state DB {self.path}: {e}") from e

    def lookup(self, content_hash: str, model_id: str) -> Record | None:
        """The record for a message and model, if any."""
        row = self.conn.execute(
            "SELECT content_hash, model_id, action, mailbox, folder, key, score, verdict, outcome"
            " FROM scored WHERE content_hash = ? AND model_id = ?",
            (content_hash, model_id),
        ).fetchone()
        return Record(*row) if row else None

    def record(self, records: Iterable[Record]) -> None:
        """Insert or update records in one transaction."""
        if self.readonly:
            raise StateError("state DB was opened read-only")
        now = time.time()
        rows = [
            (
                r.content_hash, r.model_id, r.action, r.mailbox, r.folder, r.key,
                r.score, r.verdict, r.outcome, now,
            )
            for r in records
        ]  # fmt: skip
        if not rows:
            return
        try:
            with self.conn:
                self.conn.executemany(
                    "INSERT INTO scored (content_hash, model_id, action, mailbox, folder, key,"
                    " score, verdict, outcome, scanned_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT (content_hash, model_id) DO UPDATE SET action=excluded.action,"
                    " mailbox=excluded.mailbox, folder=excluded.folder, key=excluded.key,"
                    " score=excluded.score, verdict=excluded.verdict, outcome=excluded.outcome,"
                    " scanned_at=excluded.scanned_at",
                    rows,
                )
        except sqlite3.Error as e:
            raise StateError(f"cannot write state DB {self.path}: {e}") from e

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()
