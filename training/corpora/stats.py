"""Corpus statistics: ham/spam counts per corpus and per sub-directory, and duplicates within
each corpus and across all of them together."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from training.corpora.dedupe import DedupeReport, count_duplicates
from training.corpora.example import SPAM
from training.corpora.formats import READERS, detect_format

log = logging.getLogger(__name__)


def source_group(source: str) -> str:
    """The sub-directory an Example came from: its source up to the last `/` (else the last `:`)."""
    for sep in ("/", ":"):
        head, found, _ = source.rpartition(sep)
        if found:
            return head
    return source


@dataclass(frozen=True)
class LabelCount:
    """Ham and spam counts under a name (a corpus or one of its sub-directories)."""

    name: str
    ham: int
    spam: int

    @property
    def total(self) -> int:
        """Ham plus spam."""
        return self.ham + self.spam


@dataclass(frozen=True)
class CorpusCount:
    """One corpus: its path, format, counts per sub-directory and duplicates within it."""

    path: str
    format: str
    counts: LabelCount
    groups: tuple[LabelCount, ...]
    dedupe: DedupeReport
    seconds: float


@dataclass(frozen=True)
class CorpusStats:
    """Every corpus, the totals, and the duplicates found across the corpora taken together."""

    corpora: tuple[CorpusCount, ...]
    totals: LabelCount
    across: DedupeReport
    shared_texts: int  # distinct texts that occur in more than one corpus


def corpus_stats(paths: Iterable[str | Path], *, workers: int | None = None) -> CorpusStats:
    """Read each corpus (format detected from its path) and count; holds hashes, not texts."""
    corpora: list[CorpusCount] = []
    keys: list[tuple[str, int]] = []
    corpora_of: dict[str, set[int]] = {}
    for index, path in enumerate(map(Path, paths)):
        fmt = detect_format(path)
        start = time.perf_counter()
        groups: dict[str, list[int]] = {}
        corpus_keys: list[tuple[str, int]] = []
        for ex in READERS[fmt](path, workers=workers):
            groups.setdefault(source_group(ex.source), [0, 0])[ex.label == SPAM] += 1
            digest = ex.content_hash
            corpus_keys.append((digest, ex.label))
            corpora_of.setdefault(digest, set()).add(index)
        seconds = time.perf_counter() - start
        group_counts = tuple(LabelCount(name, ham, spam) for name, (ham, spam) in groups.items())
        counts = LabelCount(str(path), sum(g.ham for g in group_counts),
                            sum(g.spam for g in group_counts))
        corpora.append(CorpusCount(path=str(path), format=fmt, counts=counts, groups=group_counts,
                                   dedupe=count_duplicates(corpus_keys), seconds=seconds))
        log.info("%s (%s): %d ham, %d spam in %.1f s", path, fmt, counts.ham, counts.spam, seconds)
        keys.extend(corpus_keys)
    totals = LabelCount("all", sum(c.counts.ham for c in corpora),
                        sum(c.counts.spam for c in corpora))
    shared = sum(1 for owners in corpora_of.values() if len(owners) > 1)
    return CorpusStats(corpora=tuple(corpora), totals=totals, across=count_duplicates(keys),
                       shared_texts=shared)


def _row(width: int, name: str, ham: int, spam: int, dedupe: DedupeReport | None = None) -> str:
    cells = f"{name:<{width}} {ham:>8,} {spam:>8,} {ham + spam:>8,}"
    if dedupe is not None:
        cells += (f" {dedupe.duplicates:>8,} {dedupe.conflicting_texts:>9,}"
                  f" {dedupe.conflicting_examples:>9,} {dedupe.kept:>8,}")
    return cells.rstrip()


def format_stats(stats: CorpusStats) -> str:
    """A plain-text table: one row per corpus, its sub-directories indented, then the totals."""
    names = [f"{c.path} [{c.format}]" for c in stats.corpora]
    total_name = f"all ({len(stats.corpora)} corpora, deduped together)"
    width = max([len(total_name), *map(len, names),
                 *(len(g.name) + 2 for c in stats.corpora for g in c.groups)])
    header = (f"{'corpus':<{width}} {'ham':>8} {'spam':>8} {'total':>8} {'dups':>8} "
              f"{'conflict':>9} {'dropped':>9} {'kept':>8}")
    lines = [header, "-" * len(header)]
    for name, c in zip(names, stats.corpora, strict=True):
        lines.append(_row(width, name, c.counts.ham, c.counts.spam, c.dedupe))
        lines.extend(_row(width, f"  {g.name}", g.ham, g.spam) for g in c.groups)
    lines.append("-" * len(header))
    lines.append(_row(width, total_name, stats.totals.ham, stats.totals.spam, stats.across))
    within = sum(c.dedupe.duplicates for c in stats.corpora)
    lines.append(f"duplicates: {within:,} within corpora, "
                 f"{stats.across.duplicates - within:,} more across corpora; "
                 f"{stats.shared_texts:,} texts occur in more than one corpus")
    lines.append("conflict = texts labeled both ham and spam; dropped = all their copies; "
                 "kept = one copy of every other text")
    return "\n".join(lines)
