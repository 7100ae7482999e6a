"""Splits: the stable split never moves a message; the book's split reproduces ch. 6 sizes."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from training.corpora.example import HAM, SPAM, Example
from training.corpora.split import (
    balance_by_undersampling,
    book_split,
    oversample,
    split_examples,
    split_of,
)


def corpus(n: int, prefix: str = "msg", label: int = HAM) -> list[Example]:
    return [Example(f"{prefix} {i}", label, f"test/{prefix}/{i}") for i in range(n)]


def test_split_of_depends_on_the_text_alone() -> None:
    ex = Example("hello world", HAM, "a/1")
    assert split_of(ex) == split_of(Example("hello world", SPAM, "b/2"))
    assert split_of(ex) in ("train", "val", "test")


def test_split_fractions_are_roughly_honoured() -> None:
    counts = Counter(split_of(ex) for ex in corpus(20_000))
    assert counts["train"] / 20_000 == pytest.approx(0.8, abs=0.01)
    assert counts["val"] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts["test"] / 20_000 == pytest.approx(0.1, abs=0.01)


def test_adding_and_reordering_files_moves_no_existing_example() -> None:
    old = corpus(2_000)
    before = {ex.source: name for name, exs in split_examples(old).items() for ex in exs}
    grown = corpus(3_000, prefix="new") + old
    random.Random(1).shuffle(grown)
    after = {ex.source: name for name, exs in split_examples(grown).items() for ex in exs}
    assert all(after[source] == name for source, name in before.items())


def test_split_examples_keeps_input_order_within_each_split() -> None:
    examples = corpus(500)
    parts = split_examples(examples, (0.6, 0.2, 0.2))
    assert sum(len(v) for v in parts.values()) == 500
    for exs in parts.values():
        assert exs == sorted(exs, key=examples.index)


def test_seed_salt_gives_a_different_but_stable_assignment() -> None:
    examples = corpus(1_000)
    plain = [split_of(ex) for ex in examples]
    salted = [split_of(ex, seed_salt="fold-2") for ex in examples]
    assert salted != plain
    assert salted == [split_of(ex, seed_salt="fold-2") for ex in examples]


def test_degenerate_and_invalid_fractions() -> None:
    assert {split_of(ex, (1.0, 0.0, 0.0)) for ex in corpus(200)} == {"train"}
    assert {split_of(ex, (0.0, 0.0, 1.0)) for ex in corpus(200)} == {"test"}
    with pytest.raises(ValueError, match="sum to 1"):
        split_of(corpus(1)[0], (0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="three"):
        split_examples(corpus(1), (0.9, 0.1))


def test_balance_undersamples_ham_to_the_spam_count_ham_first() -> None:
    examples = corpus(4_827, "ham", HAM) + corpus(747, "spam", SPAM)
    balanced = balance_by_undersampling(examples)
    assert Counter(ex.label for ex in balanced) == {HAM: 747, SPAM: 747}
    assert [ex.label for ex in balanced] == [HAM] * 747 + [SPAM] * 747
    assert balanced == balance_by_undersampling(examples, seed=123)
    assert balanced != balance_by_undersampling(examples, seed=124)


def test_balance_undersamples_spam_when_spam_is_the_majority() -> None:
    balanced = balance_by_undersampling(corpus(3, "ham", HAM) + corpus(10, "spam", SPAM))
    assert Counter(ex.label for ex in balanced) == {HAM: 3, SPAM: 3}


def test_book_split_gives_the_book_sizes_for_the_balanced_sms_corpus() -> None:
    balanced = balance_by_undersampling(corpus(4_827, "ham", HAM) + corpus(747, "spam", SPAM))
    parts = book_split(balanced)
    assert {k: len(v) for k, v in parts.items()} == {"train": 1045, "val": 149, "test": 300}
    assert parts == book_split(balanced, seed=123)
    assert sorted(ex.source for v in parts.values() for ex in v) == sorted(
        ex.source for ex in balanced)


def test_book_split_does_not_mutate_its_input() -> None:
    examples = corpus(50)
    copy = list(examples)
    book_split(examples)
    assert examples == copy


@pytest.mark.parametrize(("source", "name"), [
    ("spamassassin/easy_ham/00001.abc", "spamassassin"),
    ("enron1/ham/0001.txt", "enron1"),
    ("sms:SMSSpamCollection:12", "sms"),
    ("inbox", "inbox"),
])
def test_an_example_knows_its_corpus(source: str, name: str) -> None:
    assert Example("x", HAM, source).corpus == name


def test_oversample_repeats_the_named_corpora_in_place() -> None:
    items = [Example("a", HAM, "sa/1"), Example("b", SPAM, "enron1/2"), Example("c", SPAM, "sa/3")]
    assert oversample(items, {"sa": 3}) == [0, 0, 0, 1, 2, 2, 2]
    assert oversample(items, {"enron1": 2, "other": 5}) == [0, 1, 1, 2]
    assert oversample(items, {}) == [0, 1, 2]


def test_oversample_refuses_a_factor_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        oversample([Example("a", HAM, "sa/1")], {"sa": 0})
