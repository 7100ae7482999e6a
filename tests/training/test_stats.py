"""Corpus stats: counts per corpus and sub-directory, duplicates within and across corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.test_corpora import make_enron_tar
from training.corpora.stats import corpus_stats, format_stats, source_group


@pytest.fixture
def two_corpora(tmp_path: Path) -> tuple[Path, Path]:
    first = make_enron_tar(tmp_path / "enron8.tar.gz", {
        "enron8/ham/1.ham.txt": b"Subject: meeting\nat ten\n",
        "enron8/ham/2.ham.txt": b"Subject: meeting\r\nat ten\r\n",  # same text as 1
        "enron8/spam/3.spam.txt": b"Subject: pills\ncheap\n",
        "enron8/spam/4.spam.txt": b"Subject: shared\nin both\n",
    })
    second = make_enron_tar(tmp_path / "enron9.tar.gz", {
        "enron9/ham/1.ham.txt": b"Subject: shared\nin both\n",  # conflicts with enron8 spam 4
        "enron9/spam/2.spam.txt": b"Subject: pills\ncheap\n",  # agrees with enron8 spam 3
        "enron9/spam/3.spam.txt": b"Subject: prize\nwon\n",
    })
    return first, second


def test_counts_per_corpus_and_subdirectory(two_corpora: tuple[Path, Path]) -> None:
    stats = corpus_stats(two_corpora)
    first, second = stats.corpora
    assert first.format == "enron"
    assert (first.counts.ham, first.counts.spam) == (2, 2)
    assert [(g.name, g.ham, g.spam) for g in first.groups] == [
        ("enron8/ham", 2, 0), ("enron8/spam", 0, 2)]
    assert (stats.totals.ham, stats.totals.spam) == (3, 4)
    assert first.dedupe.duplicates == 1 and first.dedupe.conflicting_texts == 0
    assert second.dedupe.duplicates == 0


def test_duplicates_across_corpora_are_counted_together(two_corpora: tuple[Path, Path]) -> None:
    stats = corpus_stats(two_corpora)
    assert stats.across.total == 7
    assert stats.across.duplicates == 3  # the CRLF twin, the pills spam, the shared text
    assert stats.across.conflicting_texts == 1
    assert stats.across.conflicting_examples == 2
    assert stats.across.kept == 3  # meeting, pills, prize
    assert stats.shared_texts == 2


def test_format_stats_is_a_table_with_every_corpus_and_group(
        two_corpora: tuple[Path, Path]) -> None:
    table = format_stats(corpus_stats(two_corpora))
    assert "enron8.tar.gz [enron]" in table
    assert "  enron9/spam" in table
    assert "all (2 corpora, deduped together)" in table
    assert "2 more across corpora" in table


@pytest.mark.parametrize("source, group", [
    ("spamassassin/easy_ham/00001.7c53", "spamassassin/easy_ham"),
    ("enron1/ham/0001.1999-12-10.farmer.ham.txt", "enron1/ham"),
    ("sms:SMSSpamCollection:12", "sms:SMSSpamCollection"),
    ("maildir:Maildir/.Junk/1700000000.M1P2.host", "maildir:Maildir/.Junk"),
    ("mbox:Junk:3", "mbox:Junk"),
    ("plain", "plain"),
])
def test_source_group(source: str, group: str) -> None:
    assert source_group(source) == group
