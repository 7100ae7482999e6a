"""The state DB (SQLite, WAL): which messages a model has scored, with what result.

A message is known by the sha256 of its bytes with our own headers stripped, so a message we
tagged is still recognised, and one the user moved to another folder is not scored again (which
is also what keeps a scan from moving a message the user took out of Junk straight back).

Schema 2 adds what the user taught us: `labels` (one per message hash, holding the model text,
never the mail), `retrains` (each retrain's outcome and the label counter it saw) and `counters`.
A schema-1 DB gains the new tables the first time it is opened for writing; read-only opens of
one see no labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailfilter.headers import strip_our_headers

log = logging.getLogger(__name__)
SCHEMA_VERSION = 2
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
CREATE TABLE IF NOT EXISTS labels (
    content_hash TEXT PRIMARY KEY,
    label        TEXT NOT NULL CHECK (label IN ('ham', 'spam')),
    source       TEXT NOT NULL,
    origin       TEXT NOT NULL,
    text         TEXT NOT NULL,
    model_id     TEXT,
    score        REAL,
    split        TEXT,
    seq          INTEGER NOT NULL,
    labeled_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS retrains (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    finished_at  REAL NOT NULL,
    outcome      TEXT NOT NULL,
    label_seq    INTEGER NOT NULL,
    model_sha256 TEXT,
    report       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
_RECORD_COLUMNS = "content_hash, model_id, action, mailbox, folder, key, score, verdict, outcome"
_LABEL_COLUMNS = (
    "content_hash, label, source, origin, text, model_id, score, split, seq, labeled_at"
)


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


@dataclass(frozen=True)
class Label:
    """A message the user labeled: its model text (not the mail) and where the label came from."""

    content_hash: str
    label: str  # ham or spam
    source: str  # learn, correction
    origin: str  # the path or folder the message was in
    text: str  # mailfilter.message.to_text of the message, our headers stripped
    model_id: str | None = None  # corrections: the model whose verdict the user overruled
    score: float | None = None
    split: str | None = None  # train or holdout once a retrain has assigned it; then fixed
    seq: int = 0  # the label counter when this label was (re)written
    labeled_at: float = 0.0


@dataclass
class LabelCounts:
    """What storing a batch of labels did, per label (ham, spam)."""

    added: Counter[str] = field(default_factory=Counter)
    relabeled: Counter[str] = field(default_factory=Counter)  # known, had the other label
    unchanged: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class RetrainRecord:
    """One finished retrain: installed or refused, and the label counter it had seen."""

    finished_at: float
    outcome: str
    label_seq: int
    model_sha256: str | None
    report: dict[str, Any]


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
        found = self._records("WHERE content_hash = ? AND model_id = ?", (content_hash, model_id))
        return found[0] if found else None

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

    def latest_record(self, content_hash: str) -> Record | None:
        """The most recent record of a message, whichever model scored it."""
        found = self._records(
            "WHERE content_hash = ? ORDER BY scanned_at DESC LIMIT 1", (content_hash,)
        )
        return found[0] if found else None

    def records_by_name(self, unique: str) -> list[Record]:
        """Records whose key names a Maildir file with this unique part, newest first."""
        return self._records("WHERE instr(key, ?) > 0 ORDER BY scanned_at DESC", ("/" + unique,))

    def records(self) -> list[Record]:
        """Every record, oldest scan first."""
        return self._records("ORDER BY scanned_at")

    def _records(self, clause: str, args: tuple[Any, ...] = ()) -> list[Record]:
        """Records of the `scored` table selected by a WHERE/ORDER BY clause."""
        sql = f"SELECT {_RECORD_COLUMNS} FROM scored {clause}"
        return [Record(*row) for row in self.conn.execute(sql, args).fetchall()]

    def relocate(self, content_hash: str, folder: str, key: str) -> None:
        """Note where a scored message is now (every model's record of it)."""
        self._write(
            "UPDATE scored SET folder = ?, key = ? WHERE content_hash = ?",
            (folder, key, content_hash),
        )

    def add_labels(self, labels: Iterable[Label]) -> LabelCounts:
        """Store labels in one transaction; a different label for a known message replaces it."""
        self._check_writable()
        counts = LabelCounts()
        now = time.time()
        try:
            with self.conn:
                seq = self._counter("label_seq") + 1
                for lb in labels:
                    row = self.conn.execute(
                        "SELECT label FROM labels WHERE content_hash = ?", (lb.content_hash,)
                    ).fetchone()
                    if row is not None and row[0] == lb.label:
                        counts.unchanged[lb.label] += 1
                        continue
                    self.conn.execute(
                        f"INSERT INTO labels ({_LABEL_COLUMNS}) VALUES (?,?,?,?,?,?,?,NULL,?,?)"
                        " ON CONFLICT (content_hash) DO UPDATE SET label=excluded.label,"
                        " source=excluded.source, origin=excluded.origin, text=excluded.text,"
                        " model_id=excluded.model_id, score=excluded.score, seq=excluded.seq,"
                        " labeled_at=excluded.labeled_at",
                        (
                            lb.content_hash, lb.label, lb.source, lb.origin, lb.text,
                            lb.model_id, lb.score, seq, now,
                        ),
                    )  # fmt: skip
                    (counts.added if row is None else counts.relabeled)[lb.label] += 1
                if counts.added or counts.relabeled:
                    self._set_counter("label_seq", seq)
        except sqlite3.Error as e:
            raise StateError(f"cannot write state DB {self.path}: {e}") from e
        return counts

    def labels(self, source: str | None = None) -> list[Label]:
        """Every label (or those from one source), in the order they were last written."""
        sql = f"SELECT {_LABEL_COLUMNS} FROM labels"
        args: tuple[str, ...] = ()
        if source is not None:
            sql, args = sql + " WHERE source = ?", (source,)
        return [Label(*row) for row in self._read(sql + " ORDER BY seq, content_hash", args)]

    def label(self, content_hash: str) -> Label | None:
        """The label of one message, if the user gave it one."""
        rows = self._read(
            f"SELECT {_LABEL_COLUMNS} FROM labels WHERE content_hash = ?", (content_hash,)
        )
        return Label(*rows[0]) if rows else None

    def labeled_hashes(self) -> set[str]:
        """Hashes of every message the user labeled (a scan may leave those alone)."""
        return {row[0] for row in self._read("SELECT content_hash FROM labels")}

    def label_counts(self) -> dict[str, int]:
        """Number of labels per label (ham, spam)."""
        rows = self._read("SELECT label, count(*) FROM labels GROUP BY label")
        return {"ham": 0, "spam": 0, **{label: n for label, n in rows}}

    def label_seq(self) -> int:
        """The label counter: it grows whenever a label is added or changed."""
        rows = self._read("SELECT value FROM counters WHERE name = 'label_seq'")
        return int(rows[0][0]) if rows else 0

    def set_splits(self, splits: dict[str, str]) -> None:
        """Fix labels' train/holdout assignment (content hash -> split)."""
        self._write_many(
            "UPDATE labels SET split = ? WHERE content_hash = ?",
            [(split, digest) for digest, split in splits.items()],
        )

    def record_retrain(
        self, outcome: str, label_seq: int, model_sha256: str | None, report: dict[str, Any]
    ) -> None:
        """Remember a finished retrain (installed or refused)."""
        self._write(
            "INSERT INTO retrains (finished_at, outcome, label_seq, model_sha256, report)"
            " VALUES (?,?,?,?,?)",
            (time.time(), outcome, label_seq, model_sha256, json.dumps(report, sort_keys=True)),
        )

    def last_retrain(self) -> RetrainRecord | None:
        """The most recent finished retrain, if any."""
        rows = self._read(
            "SELECT finished_at, outcome, label_seq, model_sha256, report FROM retrains"
            " ORDER BY id DESC LIMIT 1"
        )
        if not rows:
            return None
        at, outcome, seq, sha, report = rows[0]
        return RetrainRecord(at, outcome, seq, sha, json.loads(report))

    def _check_writable(self) -> None:
        if self.readonly:
            raise StateError("state DB was opened read-only")

    def _counter(self, name: str) -> int:
        row = self.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _set_counter(self, name: str, value: int) -> None:
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the schema-2 tables; none from a read-only schema-1 DB."""
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if self.readonly and "no such table" in str(e):
                return []
            raise StateError(f"cannot read state DB {self.path}: {e}") from e
        except sqlite3.Error as e:
            raise StateError(f"cannot read state DB {self.path}: {e}") from e

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        self._write_many(sql, [args])

    def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._check_writable()
        try:
            with self.conn:
                self.conn.executemany(sql, rows)
        except sqlite3.Error as e:
            raise StateError(f"cannot write state DB {self.path}: {e}") from e

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()
