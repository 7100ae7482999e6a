"""The unseen-corpus benchmark trains on every corpus but the held-out one, and refuses a model
that saw it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cross_corpus import check_unseen, training_paths, write_page
from bench.peerlib.corpus import CORPORA, Split


@pytest.mark.parametrize("holdout", sorted(CORPORA))
def test_training_paths_are_every_other_corpus(holdout: str) -> None:
    root = Path("/data")
    paths = training_paths(root, holdout)
    others = {root / rel for name, rels in CORPORA.items() if name != holdout for rel in rels}
    assert set(paths) == others
    assert not {root / rel for rel in CORPORA[holdout]} & set(paths)


def test_a_model_trained_on_the_held_out_corpus_is_refused() -> None:
    seen = {"data": ["/x/shared/data/spamassassin", "/x/shared/data/enron-spam/enron1.tar.gz"]}
    with pytest.raises(SystemExit, match="trained on the held-out corpus"):
        check_unseen(seen, "enron")
    check_unseen(seen, "lingspam")  # Ling-Spam is not among its data: accepted


def test_a_model_without_a_record_of_its_data_is_refused() -> None:
    with pytest.raises(SystemExit, match="does not record"):
        check_unseen({}, "enron")


def test_the_page_names_what_was_trained_on_and_what_was_scored(tmp_path: Path) -> None:
    split = Split(corpus="enron", paths=(Path("/d/enron1.tar.gz"),), train=[], test=[],
                  dedupe=None, to_text=str)  # type: ignore[arg-type]
    page = tmp_path / "unseen-enron.md"
    write_page(page, split, training_paths(Path("/d"), "enron"), "| table |", [], ["a note"],
               60.0, "python bench/cross_corpus.py --holdout enron")
    text = page.read_text()
    assert "trained without enron" in text
    assert "the training splits of lingspam, spamassassin (2 paths)" in text
    assert "the test split of enron1.tar.gz, which no filter saw in training" in text
    assert "| table |" in text and "- a note" in text
