"""The messages a comparison runs on: mailfilter's own train/test split, with each message's bytes.

The split is `training.job.make_splits` for the default preset (dedupe, then the stable 80/10/10
split by content hash). `split_of` looks at one text alone, so a message lands on the same side
whether its corpus is split alone or together with every corpus the default model was trained on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.corpora.dedupe import DedupeReport, dedupe
from training.corpora.example import HAM, LABELS, SPAM
from training.corpora.raw import RawExample, read_raw_corpus
from training.corpora.split import split_examples

log = logging.getLogger(__name__)

# Paths under the data root, as in training.presets.DEFAULT.corpora.
CORPORA: dict[str, tuple[str, ...]] = {
    "spamassassin": ("spamassassin",),
    "enron": (
        "enron-spam/enron1.tar.gz",
        "enron-spam/repacked/enron2.tar.gz",
        "enron-spam/repacked/enron3.tar.gz",
        "enron-spam/repacked/enron4.tar.gz",
        "enron-spam/repacked/enron5.tar.gz",
    ),
    "lingspam": ("lingspam/bare",),
}
SPLIT_NOTE = (
    "The split is mailfilter's own (dedupe, then the stable 80/10/10 split by content hash). "
    "The default model was trained on all its corpora deduplicated together; a text's side "
    "depends on its hash alone, so a duplicate across corpora lands on the same side either way. "
    "Only a text that another corpus holds with the other label could differ (dropped there, "
    "kept here)."
)


@dataclass(frozen=True)
class Split:
    """The train and test messages of one corpus, and what reading them found."""

    corpus: str
    paths: tuple[Path, ...]
    train: list[RawExample]
    test: list[RawExample]
    dedupe: DedupeReport
    to_text: Callable[[bytes], str]  # raw file → model text, as the corpus reader does it
    val: list[RawExample] = field(default_factory=list)

    def counts(self, part: Sequence[RawExample]) -> str:
        """`N ham + M spam` for a list of messages."""
        c = Counter(r.example.label for r in part)
        return f"{c[HAM]:,} {LABELS[HAM]} + {c[SPAM]:,} {LABELS[SPAM]}"


def evenly_spaced(items: Sequence[RawExample], n: int) -> list[RawExample]:
    """n items spread evenly over the sequence (all of them when n >= len), order kept."""
    if n >= len(items):
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


def stratified_subset(items: Sequence[RawExample], limit: int) -> list[RawExample]:
    """At most `limit` items with the ham/spam proportions of the whole, deterministic."""
    if limit >= len(items):
        return list(items)
    ham = [r for r in items if r.example.label == HAM]
    spam = [r for r in items if r.example.label == SPAM]
    n_spam = round(limit * len(spam) / len(items))
    keep = {id(r) for r in evenly_spaced(ham, limit - n_spam) + evenly_spaced(spam, n_spam)}
    return [r for r in items if id(r) in keep]


def load_split(corpus: str, data_root: Path, limit: int | None = None,
               workers: int | None = None, rels: tuple[str, ...] | None = None) -> Split:
    """Read a corpus by name (a key of CORPORA, or any name with its paths under the root in
    `rels`) and split it as mailfilter's training does."""
    paths = tuple(data_root / p for p in (rels if rels is not None else CORPORA[corpus]))
    corpora = [read_raw_corpus(p, workers=workers) for p in paths]
    raws = [r for c in corpora for r in c.examples]
    kept, report = dedupe(r.example for r in raws)
    by_source = {r.example.source: r for r in raws}
    splits = split_examples(kept)
    train = [by_source[ex.source] for ex in splits["train"]]
    test = [by_source[ex.source] for ex in splits["test"]]
    val = [by_source[ex.source] for ex in splits["val"]]
    if limit is not None:
        train, test = stratified_subset(train, limit), stratified_subset(test, limit)
        val = stratified_subset(val, limit)
    log.info("%s: train %d, test %d messages", corpus, len(train), len(test))
    return Split(corpus=corpus, paths=paths, train=train, test=test, dedupe=report,
                 to_text=corpora[0].to_text, val=val)


def write_messages(items: Sequence[RawExample], directory: Path) -> list[Path]:
    """Write each message (its RFC 822 form) to its own numbered file; the paths, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, r in enumerate(items):
        path = directory / f"{i:06d}.eml"
        path.write_bytes(r.message)
        paths.append(path)
    return paths


def training_note(split: Split, training: dict[str, Any]) -> str:
    """Whether a checkpoint was trained on this split, from the record it carries."""
    data = [str(d).rstrip("/") for d in training.get("data", [])]
    ours = CORPORA[split.corpus]
    if not all(any(d.endswith(rel) for d in data) for rel in ours):
        return (f"the checkpoint was NOT trained on this corpus (its data: "
                f"{', '.join(data) or 'not recorded'}); its row is not a like-for-like "
                "comparison.")
    preset = training.get("preset", "?")
    if preset == "book":
        return ("the checkpoint used the book's random split, not the stable one: "
                "some of its training messages may be in this test split.")
    dedupe = training.get("splits", {}).get("dedupe", {})
    conflicting = dedupe.get("conflicting_texts", "an unrecorded number of")
    return (f"the checkpoint (preset `{preset}`) was trained on {len(data)} corpora "
            f"including this one; its dedupe across all of them dropped {conflicting} texts with "
            "conflicting labels, the only way its split of this corpus could differ from this one.")
