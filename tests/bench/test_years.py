"""Newer mail: the SpamAssassin corpus's 2003 folders held out of training and scored whole."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.cross_corpus as cc
import bench.peerlib.years as years
from bench.peerlib.corpus import CORPORA
from bench.peerlib.years import NEWER, holds_newer_mail, year_root
from training.corpora.raw import read_raw_corpus

FOLDERS = ("easy_ham", "hard_ham", "spam", "easy_ham_2", "spam_2")


def _message(n: int, folder: str) -> bytes:
    return (f"From: person{n}@example.org\nSubject: note {n} from {folder}\n\n"
            f"Message number {n}, filed in {folder}.\n").encode()


def _fake_sa(data: Path, per_folder: int = 4) -> None:
    for k, folder in enumerate(FOLDERS):
        d = data / "spamassassin" / folder
        d.mkdir(parents=True)
        for i in range(per_folder):
            (d / f"{i:05d}.msg").write_bytes(_message(k * 100 + i, folder))


@pytest.fixture
def only_spamassassin(monkeypatch: pytest.MonkeyPatch) -> None:
    """CORPORA without Enron-Spam and Ling-Spam, so a test needs no fake archives."""
    corpora = {"spamassassin": CORPORA["spamassassin"]}
    monkeypatch.setattr(years, "CORPORA", corpora)
    monkeypatch.setattr(cc, "CORPORA", corpora)


def test_the_year_root_splits_the_corpus_by_year(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _fake_sa(data)
    for rel in CORPORA["enron"] + CORPORA["lingspam"]:
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(b"x")
    root = year_root(data, tmp_path / "root")
    year_root(data, tmp_path / "root")  # made again over itself: same links, no error
    def folders(corpus: Path) -> set[str]:
        return {r.example.source.split("/")[1] for r in read_raw_corpus(corpus).examples}

    older, newer = folders(root / "spamassassin"), folders(root / NEWER)
    assert older == {"easy_ham", "hard_ham", "spam"}
    assert newer == {"easy_ham_2", "spam_2"}
    for rel in CORPORA["enron"] + CORPORA["lingspam"]:
        assert (root / rel).resolve() == (data / rel).resolve()


def test_the_year_root_needs_every_folder(tmp_path: Path) -> None:
    (tmp_path / "data" / "spamassassin" / "easy_ham").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="spam_2"):
        year_root(tmp_path / "data", tmp_path / "root")


def test_a_model_that_may_have_read_2003_mail_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _fake_sa(data)
    root = year_root(data, tmp_path / "root")
    assert holds_newer_mail(data / "spamassassin")  # the whole corpus
    assert holds_newer_mail(root / NEWER)
    assert holds_newer_mail(Path("/elsewhere/spamassassin"))  # cannot look: refuse
    assert not holds_newer_mail(root / "spamassassin")  # the 2002 folders alone
    assert not holds_newer_mail(Path("/elsewhere/enron1.tar.gz"))
    with pytest.raises(SystemExit, match="trained on the held-out corpus"):
        cc.check_unseen({"data": [str(data / "spamassassin")]}, NEWER)
    cc.check_unseen({"data": [str(root / "spamassassin"), "/d/lingspam/bare"]}, NEWER)


def test_newer_mail_is_scored_whole_less_what_training_holds(
    tmp_path: Path, only_spamassassin: None,
) -> None:
    data = tmp_path / "data"
    _fake_sa(data, per_folder=30)
    twin = data / "spamassassin" / "easy_ham_2" / "99999.msg"  # a 2002 message again in 2003
    twin.write_bytes((data / "spamassassin" / "easy_ham" / "00003.msg").read_bytes())
    root = year_root(data, tmp_path / "root")
    assert cc.training_paths(root, NEWER) == [root / "spamassassin"]
    split = cc.unseen_split(root, NEWER)
    scored = {r.example.source for r in split.test}
    assert len(scored) == 60  # all of easy_ham_2 and spam_2, not a tenth of them
    assert not any(s.endswith("99999.msg") for s in scored)
    trained = {r.example.source.split("/")[1] for r in split.train}
    assert trained <= {"easy_ham", "hard_ham", "spam"} and trained

