"""The daemon: one process holds the model, serves the socket and watches the mailboxes.

Threads, as in watchdog's `event_debouncer`: the watchdog observers' handlers and the socket's
request threads only *enqueue*; one worker thread takes what arrived within `batch_window`
seconds and scores it as one batch, applying `settings.action` through `mailfilter.actions`;
the main thread handles signals and systemd's watchdog. Every thread is stopped and joined.

- Maildirs: files appearing in a watched folder's `new/` or `cur/` (created, or renamed there
  from `tmp/` as an MDA delivers) are scored; the spam folder and Trash are not watched.
- mbox files: a change re-runs `mailfilter.scan` on that mbox (under its lock); the state DB
  makes that cheap, since only messages not yet scored are read into the model.
- Known mail is recognised by the hash of its bytes with our headers stripped (`state`), so the
  daemon's own rewrites (tmp/ → renamed into place) and the user's moves are not scored again.
  Mail filtered through the socket is recorded too (action `filter`); when it is then delivered
  into a watched Maildir, the action is applied with that score, without running the model.
- At start-up every mailbox is scanned for mail that came while the daemon was down.
- Signals: SIGTERM/SIGINT finish the batch in hand and exit 0 (mail not yet scored waits for
  the next start); SIGHUP reloads settings and model (a new socket path needs a restart).
- systemd: `READY=1` once the model is loaded and the socket is up, `STATUS=` after every
  batch, `WATCHDOG=1` at half of `$WATCHDOG_USEC`, `STOPPING=1` when it begins to stop.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from mailfilter.corrections import reconcile, record_move
from mailfilter.engine import Scored
from mailfilter.filter import unscorable
from mailfilter.headers import tag_message
from mailfilter.mailboxes import (
    TRASH_FOLDERS,
    Mailbox,
    MailboxError,
    MaildirMessage,
    detect,
    folder_name,
    maildir_flags,
)
from mailfilter.message import to_text
from mailfilter.protocol import Answer, default_socket_path
from mailfilter.scan import scan, scan_messages
from mailfilter.sdnotify import sd_notify, watchdog_interval
from mailfilter.server import MailfilterServer
from mailfilter.settings import Settings
from mailfilter.state import Record, State, StateError, content_hash
from mailfilter.verdict import judge

log = logging.getLogger(__name__)
MAX_BATCH = 1024  # events gathered at most before a batch is scored anyway
LOCK_CHUNK = 32  # messages scored per hold of the engine lock (socket requests go in between)
_SOCKET = "socket"  # the mailbox name of records for mail scored through the socket
FILTERED = "filter"  # their action: known to no action but none; a delivery reuses the score


class DaemonError(Exception):
    """The daemon cannot start (no mailbox to watch, socket in use, ...)."""


class DaemonEngine(Protocol):
    """What the daemon needs from `mailfilter.engine.Engine` (tests pass fakes)."""

    threshold: float
    model_id: str

    def score_texts(self, texts: list[str]) -> list[float]:
        """p(spam) per text."""
        ...


@dataclass(frozen=True)
class Job:
    """One queued piece of work: a Maildir file, an mbox, a full scan, or a record to write."""

    kind: str  # "file", "mbox", "scan", "record", "reload"
    path: Path | None = None
    record: Record | None = None


class _LockedEngine:
    """The engine as `scan` sees it: scored chunk by chunk, holding the lock only per chunk."""

    def __init__(self, engine: DaemonEngine, lock: threading.Lock, chunk: int) -> None:
        self.engine, self.lock, self.chunk = engine, lock, chunk
        self.threshold, self.model_id = engine.threshold, engine.model_id

    def score_messages(
        self, items: Iterable[Any], raw_of: Callable[[Any], bytes], chunk_size: int | None = None
    ) -> Iterator[Scored[Any]]:
        batch: list[Any] = []
        for item in items:
            batch.append(item)
            if len(batch) >= self.chunk:
                yield from self._score(batch, raw_of)
                batch = []
        yield from self._score(batch, raw_of)

    def _score(self, items: list[Any], raw_of: Callable[[Any], bytes]) -> Iterator[Scored[Any]]:
        ok, texts = [], []
        for item in items:
            try:
                texts.append(to_text(raw_of(item)))
                ok.append(item)
            except Exception as e:  # one bad message is a skip
                yield Scored(item, None, f"{type(e).__name__}: {e}")
        if ok:
            with self.lock:
                scores = self.engine.score_texts(texts)
            for item, score in zip(ok, scores, strict=True):
                yield Scored(item, score)


class _Enqueue(FileSystemEventHandler):
    """A watchdog handler that only puts paths on the daemon's queue."""

    def __init__(self, daemon: Daemon, mbox: Path | None = None) -> None:
        self.daemon, self.mbox = daemon, mbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "moved", "closed", "modified"):
            return
        raw = event.dest_path if event.event_type == "moved" else event.src_path
        path = Path(os.fsdecode(raw))
        if self.mbox is not None:
            if path == self.mbox:
                self.daemon.enqueue(Job("mbox", path))
        elif (
            event.event_type != "modified"
            and path.parent.name in ("new", "cur")
            and not path.name.startswith(".")
        ):
            self.daemon.enqueue(Job("file", path))


class Daemon:
    """The long-running process: model, socket server, watchers, worker; see the module doc."""

    def __init__(
        self,
        load_settings: Callable[[], Settings],
        load_engine: Callable[[Settings], DaemonEngine],
    ) -> None:
        self._load_settings, self._load_engine = load_settings, load_engine
        self.queue: queue.Queue[Job] = queue.Queue()
        self.stop_event = threading.Event()  # set by SIGTERM/SIGINT
        self._wake = threading.Event()
        self._reload = False
        self.engine_lock = threading.Lock()  # one model call at a time
        self.current: tuple[Settings, DaemonEngine] | None = None
        self.mailboxes: list[Mailbox] = []
        self.known: set[str] | None = None
        self.server: MailfilterServer | None = None
        self.observer: Any = None
        self.worker: threading.Thread | None = None
        self.state: State | None = None
        self.batches = 0
        self.scored_total = 0

    # --- the main thread ------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; 0 on a clean stop."""
        old = {s: signal.signal(s, self._on_signal) for s in _SIGNALS}
        try:
            sd_notify("STATUS=loading the model")
            settings = self._load_settings()
            self.current = (settings, self._load_engine(settings))
            self.mailboxes = watched_mailboxes(settings)
            State.open(settings.resolved_state_path()).close()  # fail now, not in the worker
            path = Path(settings.socket_path or default_socket_path()).expanduser()
            self.server = MailfilterServer(path, self.check, self._model_id, self._max_size)
            self.server.start()
            self.worker = threading.Thread(target=self._work, name="mailfilter-batch")
            self.worker.start()
            self._start_observer()
            if settings.startup_scan and self.mailboxes:
                self.enqueue(Job("scan"))
            sd_notify(f"READY=1\nSTATUS=ready, model {self._model_id()}, socket {path}")
            log.info("ready: socket %s, %d mailboxes watched", path, len(self.mailboxes))
            self._main_loop()
            return 0
        finally:
            sd_notify("STOPPING=1\nSTATUS=stopping")
            self._shutdown()
            for s, handler in old.items():
                signal.signal(s, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self._reload = True
        else:
            self.stop_event.set()
        self._wake.set()

    def _main_loop(self) -> None:
        interval = watchdog_interval()
        while not self.stop_event.is_set():
            self._wake.wait(min(interval, 5.0) if interval else 5.0)
            self._wake.clear()
            if self.stop_event.is_set():
                break
            if self._reload:  # done by the worker, so the watchdog pings go on meanwhile
                self._reload = False
                self.enqueue(Job("reload"))
            if self.worker is None or not self.worker.is_alive():
                raise DaemonError("the batch worker died; see the log")
            if interval:
                sd_notify("WATCHDOG=1")

    def reload(self) -> bool:
        """Reload settings and model (in the worker); on any error keep the old ones.

        True when the mailboxes should be scanned again (as at start-up).
        """
        sd_notify("RELOADING=1\nSTATUS=reloading")
        try:
            settings = self._load_settings()
            engine = self._load_engine(settings)
            mailboxes = watched_mailboxes(settings)
        except Exception as e:
            log.error("reload failed, keeping the old settings and model: %s", e)
            sd_notify("READY=1\nSTATUS=reload failed; running with the old settings")
            return False
        with self.engine_lock:  # no socket request sees half of the change
            self.current = (settings, engine)
        self.mailboxes = mailboxes
        self.known = None  # for the new model/action
        self._stop_observer()
        self._start_observer()
        new_path = Path(settings.socket_path or default_socket_path()).expanduser()
        if self.server is not None and new_path != self.server.path:
            log.warning("socket_path changed: it takes effect at the next restart")
        log.info("reloaded: model %s", engine.model_id)
        sd_notify(f"READY=1\nSTATUS=reloaded, model {engine.model_id}")
        return settings.startup_scan and bool(mailboxes)

    def _start_observer(self) -> None:
        settings, _ = self._now()
        if not settings.watch or not self.mailboxes:
            return
        observer = Observer()
        for mailbox in self.mailboxes:
            if mailbox.kind == "maildir":
                observer.schedule(_Enqueue(self), str(mailbox.path), recursive=True)
            else:
                observer.schedule(_Enqueue(self, mailbox.path), str(mailbox.path.parent))
        observer.start()
        self.observer = observer

    def _stop_observer(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join()
            self.observer = None

    def _shutdown(self) -> None:
        self.stop_event.set()
        if self.worker is not None:
            self.worker.join()  # after the batch in hand
        self._stop_observer()
        if self.server is not None:
            self.server.stop()  # requests in hand are answered; their records are queued
        records = self._drain_records()
        if records and self.current is not None:
            try:
                state = State.open(self.current[0].resolved_state_path())
                try:
                    state.record(records)
                finally:
                    state.close()
            except Exception as e:  # only a cache of verdicts: the mail is safe either way
                log.warning("could not record %d verdicts at exit: %s", len(records), e)

    # --- shared by the threads ----------------------------------------------------------------

    def enqueue(self, job: Job) -> None:
        """Queue work for the batch worker (all that handlers and requests ever do)."""
        self.queue.put(job)

    def _now(self) -> tuple[Settings, DaemonEngine]:
        assert self.current is not None
        return self.current

    def _model_id(self) -> str:
        return self._now()[1].model_id

    def _max_size(self) -> int:
        return self._now()[0].max_size

    def check(self, raw: bytes, want_message: bool) -> Answer:
        """Score one message sent over the socket; the verdict is recorded as known."""
        settings, engine = self._now()
        why = unscorable(raw, settings.max_size)
        if why is not None:
            return Answer("SKIP", reason="too-large" if "large" in why else "not-a-message")
        text = to_text(raw)
        with self.engine_lock:
            score = engine.score_texts([text])[0]
        verdict = judge(raw, score, settings, engine.threshold, engine.model_id)
        body = tag_message(raw, verdict, settings.subject_prefix) if want_message else None
        record = Record(
            content_hash(raw), engine.model_id, FILTERED, _SOCKET, "-", "-",
            score, verdict.label, "tagged",
        )  # fmt: skip
        self.enqueue(Job("record", record=record))
        return Answer("OK", score, verdict.label, verdict.threshold, engine.model_id, body)

    # --- the worker thread ----------------------------------------------------------------

    def _work(self) -> None:
        """Gather jobs for batch_window seconds, then process them as one batch."""
        try:
            self.state = State.open(self._now()[0].resolved_state_path())
        except Exception as e:
            log.error("%s", e)
            return
        try:
            while not self.stop_event.is_set():
                try:
                    first = self.queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                batch = [first, *self._gather(self._now()[0].batch_window)]
                try:
                    self.process(batch)
                except Exception:
                    log.exception("a batch failed; its mail is left as it was")
        finally:
            self.state.close()

    def _gather(self, window: float) -> list[Job]:
        jobs: list[Job] = []
        deadline = time.monotonic() + window
        while len(jobs) < MAX_BATCH and not self.stop_event.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                jobs.append(self.queue.get(timeout=remaining))
            except queue.Empty:
                break
        return jobs

    def _drain_records(self) -> list[Record]:
        records: list[Record] = []
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                return records
            if job.record is not None:
                records.append(job.record)

    def _write_records(self, records: list[Record]) -> None:
        if records and self.state is not None:
            self.state.record(records)
            if self.known is not None:
                settings = self._now()[0]
                self.known.update(r.content_hash for r in records if _counts_for(r, settings))

    def _known(self) -> set[str]:
        if self.known is None:
            settings, engine = self._now()
            assert self.state is not None
            self.known = self.state.known(engine.model_id, settings.action)
        return self.known

    def process(self, batch: list[Job]) -> None:
        """Reload, write records, then scan, score files and re-scan mboxes; tell systemd."""
        rescan = any(j.kind == "reload" for j in batch) and self.reload()
        self._write_records([j.record for j in batch if j.record is not None])
        settings, engine = self._now()
        locked = _LockedEngine(engine, self.engine_lock, settings.batch_size or LOCK_CHUNK)
        scored = 0
        if rescan or any(j.kind == "scan" for j in batch):
            self.reconcile(settings)
            report = scan(self.mailboxes, settings, locked, state=self.state)
            scored += report.scanned
            self.known = None
        files = list(dict.fromkeys(j.path for j in batch if j.kind == "file" and j.path))
        self.record_moves(files, settings)
        scored += self.score_files(files, settings, locked)
        for path in dict.fromkeys(j.path for j in batch if j.kind == "mbox" and j.path):
            mailbox = next((m for m in self.mailboxes if m.path == path), None)
            if mailbox is not None:
                scored += scan([mailbox], settings, locked, state=self.state).scanned
                self.known = None
        self.batches += 1
        self.scored_total += scored
        sd_notify(
            f"STATUS=batch {self.batches}: {scored} scored; {self.scored_total} since start; "
            f"model {engine.model_id}"
        )

    def record_moves(self, paths: list[Path], settings: Settings) -> None:
        """Label messages the user moved against the model's verdict (into or out of Junk)."""
        assert self.state is not None
        for path in paths:
            try:
                correction = record_move(self.state, path, settings.spam_folder)
            except (StateError, OSError) as e:
                log.warning("%s: cannot check for a correction: %s", path, e)
                continue
            if correction is not None:
                log.info("correction: %s is %s", path, correction.label)

    def reconcile(self, settings: Settings) -> None:
        """At start-up: corrections the user made while the daemon was down."""
        assert self.state is not None
        for mailbox in self.mailboxes:
            if mailbox.kind != "maildir":
                continue
            try:
                found = reconcile(self.state, mailbox.root, settings.spam_folder)
            except (StateError, OSError) as e:
                log.warning("%s: cannot look for corrections: %s", mailbox.root, e)
                continue
            if found:
                log.info("%s: %d corrections recorded", mailbox.root, len(found))

    def score_files(self, paths: list[Path], settings: Settings, engine: _LockedEngine) -> int:
        """Score Maildir files not scored before and apply the action to each."""
        refs = [ref for ref in (self.ref_for(path, settings) for path in paths) if ref is not None]
        if not refs:
            return 0
        assert self.state is not None
        state = self.state

        def scored_before(digest: str) -> float | None:
            """A message answered through the socket, now delivered: the daemon's own score."""
            earlier = state.lookup(digest, engine.model_id)
            return earlier.score if earlier is not None and earlier.action == FILTERED else None

        report = scan_messages(refs, settings, engine, state=state, known=self._known(),
                               scored_before=scored_before)
        for r in report.results:
            if r.outcome != "skipped":
                log.info("%s/%s: %s (%s %.4f)", r.folder, r.key, r.outcome, r.verdict, r.score)
        return report.scanned

    def ref_for(self, path: Path, settings: Settings) -> MaildirMessage | None:
        """The message ref of a file in a watched folder's new/ or cur/, else None."""
        sub, folder_path = path.parent.name, path.parent.parent
        if sub not in ("new", "cur") or path.name.startswith("."):
            return None
        for mailbox in self.mailboxes:
            if mailbox.kind != "maildir":
                continue
            if folder_path == mailbox.root:
                name = "INBOX"
            elif folder_path.parent == mailbox.root and folder_path.name.startswith("."):
                name = folder_path.name
            else:
                continue
            if mailbox.path != mailbox.root and folder_path != mailbox.path:
                continue  # a single Maildir++ folder was configured: only that one
            skip = (folder_name(settings.spam_folder), *TRASH_FOLDERS)
            if mailbox.path == mailbox.root and any(_under(name, s) for s in skip):
                return None
            return MaildirMessage(
                mailbox=mailbox, folder=name, key=f"{sub}/{path.name}",
                flags=maildir_flags(path.name), folder_path=folder_path, subdir=sub,
                name=path.name,
            )  # fmt: skip
        return None


_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _under(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def _counts_for(record: Record, settings: Settings) -> bool:
    """Whether a record makes its message known under the current action (as State.known)."""
    return settings.action == "none" or record.action == settings.action


def watched_mailboxes(settings: Settings) -> list[Mailbox]:
    """The configured mailboxes that exist; a missing or odd one is logged and left out."""
    found: list[Mailbox] = []
    for path in settings.mailboxes:
        try:
            mailbox = detect(path.expanduser())
        except MailboxError as e:
            log.warning("not watched: %s", e)
            continue
        found.append(_resolved(mailbox))
    return found


def _resolved(mailbox: Mailbox) -> Mailbox:
    """The same mailbox with real paths, so watch events (which carry real paths) match."""
    return Mailbox(
        Path(os.path.realpath(mailbox.path)), mailbox.kind,
        Path(os.path.realpath(mailbox.root)), mailbox.folders,
    )  # fmt: skip


def run_daemon(load_settings: Callable[[], Settings]) -> int:
    """Run the daemon with the real engine; returns the exit status."""
    from mailfilter.engine import Engine

    def load_engine(settings: Settings) -> DaemonEngine:
        return Engine.load(
            settings.checkpoint,
            device=settings.device,
            threads=settings.threads,
            batch_size=settings.batch_size,
        )

    return Daemon(load_settings, load_engine).run()
