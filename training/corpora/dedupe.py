"""Dedupe by content hash: keep the first copy of a text, drop every copy of a text whose
copies carry both labels (there is no telling which label is right)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from training.corpora.example import Example

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DedupeReport:
    """What dedupe found: counts of examples and of distinct texts."""

    total: int  # examples in
    distinct: int  # distinct texts
    conflicting_texts: int  # distinct texts seen with both labels
    conflicting_examples: int  # examples carrying such a text (all dropped)

    @property
    def duplicates(self) -> int:
        """Examples that repeat an earlier text (with either label)."""
        return self.total - self.distinct

    @property
    def kept(self) -> int:
        """Examples left: one per distinct text whose copies agree on the label."""
        return self.distinct - self.conflicting_texts

    def describe(self) -> str:
        """One line for logs and reports."""
        return (f"{self.total:,} examples, {self.duplicates:,} duplicates, "
                f"{self.conflicting_texts:,} texts with conflicting labels "
                f"({self.conflicting_examples:,} examples dropped), {self.kept:,} kept")


def count_duplicates(keys: Iterable[tuple[str, int]]) -> DedupeReport:
    """DedupeReport for (content hash, label) pairs, without holding any text."""
    labels_of: dict[str, set[int]] = {}
    copies: dict[str, int] = {}
    total = 0
    for digest, label in keys:
        total += 1
        labels_of.setdefault(digest, set()).add(label)
        copies[digest] = copies.get(digest, 0) + 1
    conflicting = [d for d, labels in labels_of.items() if len(labels) > 1]
    return DedupeReport(total=total, distinct=len(labels_of), conflicting_texts=len(conflicting),
                        conflicting_examples=sum(copies[d] for d in conflicting))


def dedupe(examples: Iterable[Example]) -> tuple[list[Example], DedupeReport]:
    """Examples with one copy per text (the first, in input order) and conflicting texts removed."""
    items = [(ex, ex.content_hash) for ex in examples]
    report = count_duplicates((digest, ex.label) for ex, digest in items)
    labels_of: dict[str, set[int]] = {}
    for ex, digest in items:
        labels_of.setdefault(digest, set()).add(ex.label)
    kept: list[Example] = []
    seen: set[str] = set()
    for ex, digest in items:
        if digest in seen or len(labels_of[digest]) > 1:
            continue
        seen.add(digest)
        kept.append(ex)
    log.info("dedupe: %s", report.describe())
    if report.conflicting_texts:
        log.warning("dedupe: dropped all %d copies of %d texts labeled both ham and spam",
                    report.conflicting_examples, report.conflicting_texts)
    return kept, report
