"""The peer comparison: raw corpora match the training readers, the split is the training split,
and the bogofilter and spamprobe wrappers learn and score real files."""

from __future__ import annotations

import random
from email.message import EmailMessage
from pathlib import Path

import pytest

from bench.peerlib.bogofilter import Bogofilter
from bench.peerlib.corpus import CORPORA, stratified_subset, write_messages
from bench.peerlib.peer import PeerMissingError, PeerScore
from bench.peerlib.report import FilterResult, markdown_table, roc_points
from bench.peerlib.spamprobe import SpamProbe, parse_score_lines
from training.corpora.example import HAM, SPAM, Example
from training.corpora.formats import read_corpus
from training.corpora.raw import RawExample, read_raw_corpus, subject_file_message
from training.metrics import roc_auc
from training.presets import DEFAULT

HAM_WORDS = ("meeting", "agenda", "budget", "quarterly", "review", "minutes", "project", "team")
SPAM_WORDS = ("viagra", "winner", "lottery", "cheap", "pills", "casino", "prize", "offer")


def message(i: int, spam: bool) -> bytes:
    """A small RFC 822 message whose words say which class it is."""
    rng = random.Random(i)
    words = SPAM_WORDS if spam else HAM_WORDS
    msg = EmailMessage()
    msg["From"] = f"{'promo' if spam else 'colleague'}{i}@example.{'biz' if spam else 'org'}"
    msg["To"] = "bob@example.org"
    msg["Subject"] = " ".join(rng.choices(words, k=3))
    msg["Message-ID"] = f"<{i}.{int(spam)}@example.org>"
    msg.set_content(" ".join(rng.choices(words, k=40)))
    return msg.as_bytes()


def synthetic_files(tmp_path: Path, n: int) -> tuple[list[Path], list[Path], list[Path], list[int]]:
    """n ham and n spam training files, and a test set of n/2 of each with labels."""
    def write(kind: str, start: int, count: int, spam: bool) -> list[Path]:
        d = tmp_path / kind
        d.mkdir(exist_ok=True)
        paths = []
        for i in range(start, start + count):
            p = d / f"{i}.eml"
            p.write_bytes(message(i, spam))
            paths.append(p)
        return paths

    ham = write("ham", 0, n, False)
    spam = write("spam", 0, n, True)
    test = write("test", 1000, n // 2, False) + write("test", 2000, n // 2, True)
    return ham, spam, test, [HAM] * (n // 2) + [SPAM] * (n // 2)


def test_subject_file_becomes_a_subject_header_a_blank_line_and_the_body() -> None:
    assert subject_file_message(b"Subject: cheap pills\r\nbuy now\r\n") == (
        b"Subject: cheap pills\n\nbuy now\n")
    assert subject_file_message(b"no subject line\nat all") == (
        b"Subject: \n\nno subject line\nat all\n")


def test_raw_corpus_yields_the_training_readers_examples(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / "sa" / "ham").mkdir(parents=True, exist_ok=True)
        (tmp_path / "sa" / "spam").mkdir(parents=True, exist_ok=True)
        (tmp_path / "sa" / "ham" / f"{i}").write_bytes(message(i, False))
        (tmp_path / "sa" / "spam" / f"{i}").write_bytes(message(i, True))
        part = tmp_path / "ling" / "part1"
        part.mkdir(parents=True, exist_ok=True)
        (part / f"{i}-msg.txt").write_bytes(b"Subject: linguistics\n\nsyntax and semantics")
        (part / f"spmsg{i}.txt").write_bytes(b"Subject: free money\n\nclick here now")
    for root in (tmp_path / "sa", tmp_path / "ling"):
        raw = read_raw_corpus(root, workers=1)
        assert [r.example for r in raw.examples] == list(read_corpus(root, workers=1))
        assert all(raw.to_text(r.raw) == r.example.text for r in raw.examples)
        assert all(r.message.startswith(b"From: ") or r.message.startswith(b"Subject: ")
                   for r in raw.examples)


def test_the_compared_corpora_are_the_default_models_training_corpora() -> None:
    assert {p for paths in CORPORA.values() for p in paths} <= set(DEFAULT.corpora)


def test_stratified_subset_keeps_the_class_proportions() -> None:
    items = [RawExample(Example(f"t{i}", SPAM if i % 4 == 0 else HAM, f"s{i}"), b"", b"")
             for i in range(400)]
    sub = stratified_subset(items, 100)
    assert len(sub) == 100
    assert sum(r.example.label for r in sub) == 25


def test_roc_points_run_from_nothing_flagged_to_everything_flagged() -> None:
    fprs, tprs = roc_points([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    assert (fprs[0], tprs[0], fprs[-1], tprs[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert (fprs[1], tprs[1]) == (0.0, 0.5)


def test_table_counts_verdicts_not_scores() -> None:
    scores = [PeerScore(0.85, False), PeerScore(0.2, False), PeerScore(0.9, True),
              PeerScore(0.8, False)]
    result = FilterResult("x", "1", "", scores, score_seconds=2.0, train_seconds=None)
    row = markdown_table([result], [HAM, HAM, SPAM, SPAM]).splitlines()[2]
    # Ranking at no false positive: the top ham scores 0.85, so only the 0.9 spam is caught.
    assert "| 75.00% | 0.00% (0/2) | 50.00% (1/2) | 0.7500 | 50.00% (1/2) | 2.0 | — |" in row


def test_spamprobe_score_lines_are_parsed_in_order() -> None:
    out = "SPAM 0.9999990 0a1b\nGOOD 0.0000100 2c3d\n"
    assert parse_score_lines(out) == [PeerScore(0.999999, True), PeerScore(0.00001, False)]


@pytest.mark.parametrize("peer_class", [Bogofilter, SpamProbe])
def test_peer_learns_synthetic_mail_and_scores_spam_higher(peer_class: type, tmp_path: Path
                                                           ) -> None:
    peer = peer_class(tmp_path / "work")
    try:
        peer.check_installed()
    except PeerMissingError as e:
        pytest.skip(str(e))
    ham, spam, test, labels = synthetic_files(tmp_path, 20)
    with peer:
        peer.train(ham, spam)
        peer.start()
        scores = peer.score(test)
    assert len(scores) == len(test)
    assert roc_auc(labels, [s.score for s in scores]) > 0.95
    assert sum(s.spam for s, y in zip(scores, labels, strict=True) if y == HAM) == 0


def test_messages_are_written_one_file_each(tmp_path: Path) -> None:
    items = [RawExample(Example("t", HAM, "s"), b"raw", b"Subject: x\n\nbody\n")] * 3
    paths = write_messages(items, tmp_path / "out")
    assert [p.read_bytes() for p in paths] == [b"Subject: x\n\nbody\n"] * 3
