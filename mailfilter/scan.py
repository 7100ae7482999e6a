"""A scan: mailboxes → skip what is known → score → verdict → plan → apply or dry-run → state.

Reading runs in the calling thread or the engine's worker thread (the `_load` generator);
parsing, tokenising and the model in the engine (its thread, or its worker processes for a
large scan); every change to the mail in the calling thread. Nothing that can go wrong with one
message stops the scan: it is logged and counted under `skipped` (not scored) or `not_applied`
(scored, but the change could not be made).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mailfilter.actions import Applier, Outcome, plan, spam_mbox_path
from mailfilter.headers import looks_like_message
from mailfilter.mailboxes import (
    Mailbox,
    MaildirMessage,
    MessageRef,
    iter_messages,
    select_folders,
)
from mailfilter.mboxedit import recover
from mailfilter.mboxlock import MboxLockError, break_stale_lock
from mailfilter.settings import Settings
from mailfilter.state import Record, State, content_hash
from mailfilter.verdict import decide, threshold_of
from mailfilter.welcomelist import welcomed_sender

if TYPE_CHECKING:
    from mailfilter.engine import Scored

log = logging.getLogger(__name__)

# Reasons that mean something is wrong (exit code 3), as opposed to normal skips.
ERROR_REASONS = frozenset({"unreadable", "unscorable", "locked", "failed", "mailbox changed"})
_NOT_APPLIED = frozenset({"vanished", "changed", "failed", "locked"})
RECORD_EVERY = 256


class ScoringEngine(Protocol):
    """What a scan needs from `mailfilter.engine.Engine` (tests pass fakes)."""

    threshold: float
    model_id: str

    def score_messages(
        self, items: Iterable[Any], raw_of: Callable[[Any], bytes], chunk_size: int | None = ...
    ) -> Iterator[Scored[Any]]:
        """Scored items, in order; `raw_of` gives each item's raw message."""
        ...


@dataclass
class MessageResult:
    """One message's line in the report (and in --json)."""

    mailbox: str
    folder: str
    key: str
    outcome: str  # kept, tagged, unchanged, moved, would tag, would move, vanished, ..., skipped
    score: float | None = None
    verdict: str | None = None
    detail: str | None = None
    where: str | None = None


@dataclass
class ScanReport:
    """Counts, timings and per-message results of one scan."""

    action: str
    dry_run: bool
    model_id: str
    threshold: float
    scanned: int = 0
    spam: int = 0
    ham: int = 0
    unsure: int = 0
    welcomed: int = 0  # of the ham: from a welcomelist_from sender, whatever the score
    changed: Counter[str] = field(default_factory=Counter)  # tagged, moved, would move, ...
    skipped: Counter[str] = field(default_factory=Counter)  # not scored, by reason
    not_applied: Counter[str] = field(default_factory=Counter)  # scored, change not made
    seconds: float = 0.0
    results: list[MessageResult] = field(default_factory=list)

    @property
    def messages_per_second(self) -> float:
        """Scored messages per second of wall time."""
        return self.scanned / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        """Messages skipped or left unchanged because something went wrong."""
        both = self.skipped + self.not_applied
        return sum(n for reason, n in both.items() if reason in ERROR_REASONS)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the --json output)."""
        return {
            "action": self.action,
            "dry_run": self.dry_run,
            "model_id": self.model_id,
            "threshold": self.threshold,
            "scanned": self.scanned,
            "spam": self.spam,
            "ham": self.ham,
            "unsure": self.unsure,
            "welcomed": self.welcomed,
            "changed": dict(self.changed),
            "skipped": dict(self.skipped),
            "not_applied": dict(self.not_applied),
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.messages_per_second, 2),
            "messages": [vars(r) for r in self.results],
        }


@dataclass
class _Loaded:
    ref: MessageRef
    raw: bytes
    size: int
    digest: str
    welcomed: bool = False  # from a welcomelist_from sender (found before the bytes are dropped)


def _where(ref: MessageRef) -> str:
    return str(ref.mailbox.path)


class _Scan:
    """The state of one running scan."""

    def __init__(
        self,
        settings: Settings,
        engine: ScoringEngine,
        dry_run: bool,
        known: set[str],
        state: State | None,
        progress: Callable[[int], None] | None,
        lock_timeout: float,
    ) -> None:
        threshold = threshold_of(settings, engine.threshold)
        self.settings, self.engine, self.dry_run = settings, engine, dry_run
        self.known, self.state, self.progress = known, state, progress
        self.lock_timeout = lock_timeout
        self.threshold = threshold
        self.report = ScanReport(settings.action, dry_run, engine.model_id, threshold)
        self.applier = Applier(settings, dry_run, lock_timeout)
        self.records: list[Record] = []
        self.lock = threading.Lock()  # skips are counted from the worker thread too

    def skip(self, mailbox: str, folder: str, key: str, reason: str, detail: str) -> None:
        """Count (and, except for known messages, list) a message that is not scored."""
        if reason != "known":  # a file renamed away (new/ to cur/) is routine, not a warning
            level = logging.INFO if reason == "vanished" else logging.WARNING
            log.log(level, "skipped %s %s %s: %s: %s", mailbox, folder, key, reason, detail)
        with self.lock:
            self.report.skipped[reason] += 1
            if reason != "known":
                self.report.results.append(
                    MessageResult(mailbox, folder, key, "skipped", detail=f"{reason}: {detail}")
                )
        if self.progress:
            self.progress(1)

    def load(self, mailboxes: Sequence[Mailbox], folders: Sequence[str]) -> Iterator[_Loaded]:
        """Read each message, dropping the unreadable, the not-a-message and the known."""
        for mailbox in mailboxes:
            where = str(mailbox.path)

            def on_skip(path: str, reason: str, detail: str, where: str = where) -> None:
                self.skip(where, path, "", reason, detail)

            refs = iter_messages(
                mailbox, on_skip, self.settings.spam_folder, folders, self.lock_timeout
            )
            yield from self.read(refs)

    def read(self, refs: Iterable[MessageRef]) -> Iterator[_Loaded]:
        """Read the messages of `refs`, skipping (and counting) what cannot or need not be."""
        for ref in refs:
            where = _where(ref)
            try:
                raw = ref.read()
            except FileNotFoundError:
                self.skip(where, ref.folder, ref.key, "vanished", "gone before it was read")
                continue
            except OSError as e:
                self.skip(where, ref.folder, ref.key, "unreadable", e.strerror or str(e))
                continue
            if not looks_like_message(raw):
                self.skip(where, ref.folder, ref.key, "not a message", "no header block")
                continue
            digest = content_hash(raw)
            if digest in self.known:
                self.skip(where, ref.folder, ref.key, "known", "")
                continue
            welcomed = welcomed_sender(raw, self.settings.welcomelist_from) is not None
            yield _Loaded(ref, raw, len(raw), digest, welcomed)

    def raw_of(self, item: _Loaded) -> bytes:
        """The bytes to score; kept on the item only where a Maildir tag will need them."""
        raw = item.raw
        self.trim(item)
        return raw

    def trim(self, item: _Loaded) -> None:
        """Drop the raw bytes unless the action will rewrite the file from them."""
        keep = (
            self.settings.action == "tag"
            and not self.dry_run
            and isinstance(item.ref, MaildirMessage)
            and item.size <= self.settings.max_size
        )
        if not keep:
            item.raw = b""

    def scored(self, item: _Loaded, score: float | None, error: str | None) -> None:
        """Decide, plan and apply for one scored message."""
        ref = item.ref
        if score is None:
            self.skip(_where(ref), ref.folder, ref.key, "unscorable", error or "?")
            return
        verdict = decide(score, self.threshold, self.engine.model_id, self.settings.unsure_band,
                         item.welcomed)
        report = self.report
        report.scanned += 1
        report.welcomed += item.welcomed
        setattr(report, verdict.label, getattr(report, verdict.label) + 1)
        outcome = self.applier.apply(
            plan(ref, verdict, item.raw, item.digest, self.settings, item.size)
        )
        if outcome is not None:
            self.done(outcome)
        if self.progress:
            self.progress(1)

    def done(self, outcome: Outcome) -> None:
        """Report an outcome and queue its state record."""
        p, report = outcome.plan, self.report
        if outcome.result in _NOT_APPLIED:
            report.not_applied[outcome.result] += 1
        elif outcome.result != "kept":
            report.changed[outcome.result] += 1
        if outcome.plan.note:
            report.not_applied[outcome.plan.note.split(" (")[0]] += 1
        report.results.append(
            MessageResult(
                _where(p.ref), p.ref.folder, p.ref.key, outcome.result, round(p.verdict.score, 6),
                p.verdict.label, outcome.detail, outcome.where,
            )
        )  # fmt: skip
        if self.state is not None and not self.dry_run and outcome.result not in _NOT_APPLIED:
            self.known.add(p.content_hash)
            self.records.append(
                Record(
                    p.content_hash, p.verdict.model_id, self.settings.action, _where(p.ref),
                    p.ref.folder, outcome.where or p.ref.key, p.verdict.score, p.verdict.label,
                    outcome.result,
                )
            )  # fmt: skip
            if len(self.records) >= RECORD_EVERY:
                self.flush_records()

    def score_all(self, items: Iterable[_Loaded], start: float) -> ScanReport:
        """Score `items` (read in the engine's worker thread), apply, finish the mbox changes."""
        try:
            for s in self.engine.score_messages(items, self.raw_of):
                self.scored(s.item, s.score, s.error)
            for outcome in self.applier.finish():
                self.done(outcome)
        finally:
            self.finish(start)
        return self.report

    def finish(self, start: float) -> None:
        """Write what is queued for the state DB and stop the clock."""
        self.flush_records()
        self.report.seconds = time.monotonic() - start

    def flush_records(self) -> None:
        """Write queued records to the state DB."""
        if self.state is not None and self.records:
            self.state.record(self.records)
        self.records = []


def _tidy_after_a_killed_run(
    mailbox: Mailbox, settings: Settings, folders: Sequence[str], applier: Applier, timeout: float
) -> None:
    """Finish a half-done mbox move, drop our dead dotlocks and tmp/ files before scanning."""
    if mailbox.kind == "maildir":
        if settings.action == "tag":
            for folder in select_folders(mailbox, settings.spam_folder, folders):
                applier.clean_tmp(folder.path / "tmp")
        return
    # A dead run's dotlock would hold up procmail and Postfix for many minutes.
    for path in (mailbox.path, spam_mbox_path(settings, mailbox.path)):
        break_stale_lock(path)
    try:
        recover(mailbox.path, timeout)
    except (MboxLockError, OSError) as e:
        log.error("%s: cannot finish an interrupted move: %s", mailbox.path, e)


def scan_messages(
    refs: Iterable[MessageRef],
    settings: Settings,
    engine: ScoringEngine,
    *,
    state: State | None = None,
    known: set[str] | None = None,
    scored_before: Callable[[str], float | None] | None = None,
    lock_timeout: float = 60.0,
) -> ScanReport:
    """Score and act on these messages (the daemon's path for new arrivals). Content hashes in
    `known` are skipped, and the set gains each message this call records; a hash for which
    `scored_before` gives a score (a message the daemon answered through its socket, now
    delivered) is acted on without running the model."""
    start = time.monotonic()
    run = _Scan(settings, engine, False, set() if known is None else known, state, None,
                lock_timeout)
    todo: list[_Loaded] = []
    try:
        for item in run.read(refs):
            earlier = scored_before(item.digest) if scored_before else None
            if earlier is not None:
                run.trim(item)
                run.scored(item, earlier, None)
            else:
                todo.append(item)
    except BaseException:
        run.finish(start)
        raise
    return run.score_all(todo, start)


def scan(
    mailboxes: Sequence[Mailbox],
    settings: Settings,
    engine: ScoringEngine,
    *,
    dry_run: bool = False,
    folders: Sequence[str] = (),
    rescan: bool = False,
    state: State | None = None,
    progress: Callable[[int], None] | None = None,
    lock_timeout: float = 60.0,
) -> ScanReport:
    """Scan mailboxes with `engine` and apply `settings.action` (or describe it, dry_run)."""
    start = time.monotonic()
    known = set()
    if state and not rescan:
        # What this model already scored, and what the user labeled (their word beats the model's:
        # a message taken out of Junk is not moved back after a retrain changes the model).
        known = state.known(engine.model_id, settings.action) | state.labeled_hashes()
    run = _Scan(settings, engine, dry_run, known, state, progress, lock_timeout)
    for mailbox in mailboxes:
        if folders and mailbox.kind == "mbox":
            log.warning(
                "%s: --folder picks Maildir++ folders; an mbox is scanned whole", mailbox.path
            )
        if not dry_run:
            _tidy_after_a_killed_run(mailbox, settings, folders, run.applier, lock_timeout)
    return run.score_all(run.load(mailboxes, folders), start)
