"""Turn raw corpus files into Examples on every core, in input order, with bounded memory.

Converting mail to model text (`mailfilter.message`) is the slow step of reading a corpus and it
is pure CPU, so readers hand their raw bytes here. The first chunk is converted in-process; only
a corpus larger than one chunk starts a pool of forked workers (where `fork` exists).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import chain, islice

from training.corpora.example import Example

# (raw bytes, label, source) as a reader finds them.
RawItem = tuple[bytes, int, str]
CHUNK = 64  # messages per task: enough to amortise the pickling round trip
IN_FLIGHT_PER_WORKER = 4  # tasks queued per worker; bounds the raw bytes held in memory
MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """The CPUs this process may run on, capped at MAX_DEFAULT_WORKERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


def _convert_chunk(convert: Callable[[bytes], str], raws: list[bytes]) -> list[str]:
    return [convert(raw) for raw in raws]


def _make(items: list[RawItem], texts: list[str]) -> Iterator[Example]:
    for (_, label, source), text in zip(items, texts, strict=True):
        yield Example(text=text, label=label, source=source)


def to_examples(items: Iterable[RawItem], convert: Callable[[bytes], str],
                workers: int | None = None) -> Iterator[Example]:
    """Yield Example(convert(raw), label, source) for each item, in order; workers=1 stays serial.

    `convert` must be a module-level function (it is pickled by reference).
    """
    workers = default_workers() if workers is None else max(1, workers)
    it = iter(items)
    first = list(islice(it, CHUNK))
    if workers == 1 or len(first) < CHUNK or "fork" not in multiprocessing.get_all_start_methods():
        for raw, label, source in chain(first, it):
            yield Example(text=convert(raw), label=label, source=source)
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    pending: deque[tuple[list[RawItem], Future[list[str]]]] = deque()
    try:
        for chunk in chain([first], iter(lambda: list(islice(it, CHUNK)), [])):
            pending.append((chunk, pool.submit(_convert_chunk, convert, [c[0] for c in chunk])))
            while len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                done, future = pending.popleft()
                yield from _make(done, future.result())
        while pending:
            done, future = pending.popleft()
            yield from _make(done, future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
