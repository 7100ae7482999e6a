"""Scoring a large scan in worker processes, one model thread each (CPU only).

On a small machine one process cannot keep the model busy: parsing and tokenising are Python
and hold the GIL, and two model threads that wait on each other at every operation leave a core
idle whenever the parser takes it. Forked workers each run the whole chain (`to_text`,
tokenise, forward) on their own chunk with one model thread, so every core always has
whole messages to work on.

The workers only compute scores. The calling process reads every message, sends the raw bytes,
and keeps every write to mail, the state DB and the report; it gets the scores back in order.
Workers are forked from the calling process (the loaded model is shared copy-on-write, no
reload), die with it (`PR_SET_PDEATHSIG`), ignore Ctrl-C (the caller stops them), and use one
model thread (an OpenMP pool cannot be used again after `fork`). When a worker dies or fails,
the chunks it had and everything after them are scored in the calling process instead: a
message is never dropped.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

from mailfilter.message import DEFAULT_MAX_RAW_BYTES, to_text

if TYPE_CHECKING:
    from mailfilter.engine import Engine, Scored

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_AUTO_WORKERS = 8
_PR_SET_PDEATHSIG = 1
# Set in the parent before forking; the workers inherit them.
_ENGINE: Engine | None = None
_TO_TEXT: Callable[[bytes], str] = to_text


def auto_workers(threads: int | None) -> int:
    """One worker per usable core (at most MAX_AUTO_WORKERS), no more than `threads` asks."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, threads or cores, MAX_AUTO_WORKERS))


def can_fork() -> bool:
    """Workers are forked; where `fork` is missing, scoring stays in one process."""
    return "fork" in multiprocessing.get_all_start_methods()


def _init_worker(parent: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the caller, which stops us
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: no death signal, so a worker of a killed
        pass  # scan waits on the pool's pipe until something ends it
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    torch.set_num_threads(1)


def _score_raws(raws: list[bytes]) -> list[tuple[float | None, str | None]]:
    """In a worker: p(spam), or the error, for each raw message."""
    engine, read = _ENGINE, _TO_TEXT
    assert engine is not None, "worker started without an engine"
    texts: list[str] = []
    errors: list[str | None] = []
    for raw in raws:
        try:
            texts.append(read(raw))
            errors.append(None)
        except Exception as e:  # to_text does not raise; if it ever did, one skip
            errors.append(f"{type(e).__name__}: {e}")
    scores = iter(engine.score_ids(engine.tokenize(texts)))
    return [(next(scores), None) if err is None else (None, err) for err in errors]


def score_in_workers(
    engine: Engine,
    items: Iterable[T],
    raw_of: Callable[[T], bytes],
    workers: int,
    chunk_size: int,
    read: Callable[[bytes], str] = to_text,
) -> Iterator[Scored[T]]:
    """Scores for `items`, in order, computed by `workers` forked processes; `read` turns raw
    bytes into the model's text (`message.to_text`, or a corpus reader's for benchmarks)."""
    from mailfilter.engine import Scored

    global _ENGINE, _TO_TEXT
    _ENGINE, _TO_TEXT = engine, read
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    it = iter(items)
    pending: deque[tuple[list[T], list[bytes], Future[list[tuple[float | None, str | None]]]]] = (
        deque()
    )
    broken: BaseException | None = None
    try:
        while True:
            while broken is None and len(pending) < 2 * workers:
                chunk = list(islice(it, chunk_size))
                if not chunk:
                    break
                raws = [raw_of(item) for item in chunk]
                if read is to_text:  # it reads only this much: a huge message is not sent whole
                    raws = [raw[:DEFAULT_MAX_RAW_BYTES] for raw in raws]
                try:
                    pending.append((chunk, raws, pool.submit(_score_raws, raws)))
                except RuntimeError as e:  # the pool broke before this submit
                    broken = e
                    pending.append((chunk, raws, Future()))
            if not pending:
                break
            chunk, raws, future = pending.popleft()
            results = None
            if broken is None:
                try:
                    results = future.result()
                except Exception as e:  # a worker died or failed: score here instead
                    broken = e
                    log.warning("scoring workers failed (%s); scoring in this process",
                                type(e).__name__)
            if results is None:
                yield from _score_here(engine, chunk, raws, read)
                continue
            for item, (score, error) in zip(chunk, results, strict=True):
                yield Scored(item, score, error)
        if broken is not None:  # the rest, too
            yield from engine.score_stream(it, lambda item: read(raw_of(item)), chunk_size)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _ENGINE, _TO_TEXT = None, to_text


def _score_here(
    engine: Engine, chunk: list[T], raws: list[bytes], read: Callable[[bytes], str]
) -> Iterator[Scored[T]]:
    """One chunk scored in the calling process (after the workers failed)."""
    from mailfilter.engine import Scored

    pairs = list(zip(chunk, raws, strict=True))
    for s in engine.score_stream(pairs, lambda pair: read(pair[1]), len(pairs) or 1):
        yield Scored(s.item[0], s.score, s.error)
