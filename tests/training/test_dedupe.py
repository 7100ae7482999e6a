"""Dedupe keeps the first copy of each text and drops every copy of a text labeled both ways."""

from __future__ import annotations

import logging

import pytest

from training.corpora.dedupe import DedupeReport, count_duplicates, dedupe
from training.corpora.example import HAM, SPAM, Example


def test_keeps_the_first_copy_in_input_order() -> None:
    examples = [Example("a", HAM, "x/1"), Example("b", SPAM, "x/2"), Example("a", HAM, "y/1"),
                Example("c", HAM, "x/3"), Example("b", SPAM, "y/2"), Example("a", HAM, "z/1")]
    kept, report = dedupe(examples)
    assert [ex.source for ex in kept] == ["x/1", "x/2", "x/3"]
    assert report == DedupeReport(total=6, distinct=3, conflicting_texts=0, conflicting_examples=0)
    assert (report.duplicates, report.kept) == (3, 3)


def test_drops_every_copy_of_a_text_with_conflicting_labels(
        caplog: pytest.LogCaptureFixture) -> None:
    examples = [Example("free money", SPAM, "a/1"), Example("hello", HAM, "a/2"),
                Example("free money", HAM, "b/1"), Example("free money", SPAM, "c/1"),
                Example("hello", HAM, "b/2")]
    with caplog.at_level(logging.WARNING):
        kept, report = dedupe(examples)
    assert kept == [Example("hello", HAM, "a/2")]
    assert report.duplicates == 3
    assert report.conflicting_texts == 1
    assert report.conflicting_examples == 3
    assert report.kept == 1
    assert "labeled both ham and spam" in caplog.text


def test_the_same_text_from_different_sources_is_one_text() -> None:
    kept, _ = dedupe([Example("same", HAM, "spamassassin/easy_ham/1"),
                      Example("same", HAM, "enron1/ham/1.ham.txt")])
    assert len(kept) == 1


def test_count_duplicates_needs_only_hashes_and_labels() -> None:
    report = count_duplicates([("h1", HAM), ("h1", HAM), ("h2", SPAM), ("h2", HAM), ("h3", HAM)])
    assert report == DedupeReport(total=5, distinct=3, conflicting_texts=1, conflicting_examples=2)
    assert report.describe() == ("5 examples, 2 duplicates, 1 texts with conflicting labels "
                                 "(2 examples dropped), 2 kept")


def test_empty_input() -> None:
    assert dedupe([]) == ([], DedupeReport(0, 0, 0, 0))
