"""How a checkpoint reads text (case, sender lines, punctuation): recorded in the metadata,
applied by everything that tokenises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open

from mailfilter.engine import Engine
from models.checkpoint import CheckpointError, CheckpointMeta, read_meta, save_checkpoint
from models.classifier import GPTClassifier
from models.tokenizer import AS_IS, TextForm, apply_case, drop_sender, split_punct
from tests.conftest import TINY

TEXTS = ["Subject: FREE Money\n\nClick NOW", "Subject: Lunch?\n\nSee you at Noon, Ann"]


def _save(tmp_path: Path, model: GPTClassifier, text_case: str, text_sender: str = "keep",
          text_punct: str = "keep") -> Path:
    meta = CheckpointMeta(config=TINY, max_length=64, threshold=0.5, text_case=text_case,
                          text_sender=text_sender, text_punct=text_punct)
    name = f"{text_case}-{text_sender}-{text_punct}.safetensors"
    return save_checkpoint(model, meta, tmp_path / name)


def test_apply_case() -> None:
    assert apply_case(TEXTS, "keep") == TEXTS
    assert apply_case(TEXTS, "lower") == [t.lower() for t in TEXTS]
    with pytest.raises(ValueError, match="unknown text case"):
        apply_case(TEXTS, "upper")


@pytest.mark.parametrize(("key", "value", "unknown"), [
    ("text_case", "lower", "title"),
    ("text_sender", "drop", "hide"),
    ("text_punct", "split", "strip"),
])
def test_each_text_form_field_round_trips_keep_is_not_written_and_unknown_is_an_error(
    tmp_path: Path, tiny_classifier: GPTClassifier, key: str, value: str, unknown: str
) -> None:
    fields = {"text_case": "keep", "text_sender": "keep", "text_punct": "keep", key: value}
    written = _save(tmp_path, tiny_classifier, *fields.values())
    assert getattr(read_meta(written), key) == value
    assert read_meta(written).text_form.metadata() == fields
    both = _save(tmp_path, tiny_classifier, "lower", *list(fields.values())[1:])
    assert read_meta(both).text_form.metadata() == fields | {"text_case": "lower"}
    keep = _save(tmp_path, tiny_classifier, "keep")
    assert read_meta(keep).text_form == AS_IS
    with safe_open(str(keep), framework="pt") as f:  # files from before the field read the same
        assert key not in (f.metadata() or {})
    md = CheckpointMeta(config=TINY).to_metadata() | {key: unknown}
    with pytest.raises(CheckpointError, match=f"unknown text {key.removeprefix('text_')}"):
        CheckpointMeta.from_metadata(md)


def test_the_engine_reads_text_as_the_checkpoint_says(
    tmp_path: Path, tiny_classifier: GPTClassifier
) -> None:
    lower = Engine.load(_save(tmp_path, tiny_classifier, "lower"), device="cpu", workers=1)
    keep = Engine.load(_save(tmp_path, tiny_classifier, "keep"), device="cpu", workers=1)
    folded = [t.lower() for t in TEXTS]
    assert lower.tokenize(TEXTS) == keep.tokenize(folded) != keep.tokenize(TEXTS)
    assert lower.score_texts(TEXTS) == keep.score_texts(folded)
    assert lower.score_texts(TEXTS) != keep.score_texts(TEXTS)


def test_drop_sender_takes_only_the_sender_lines_of_the_header_block() -> None:
    full = ("From: Ann <ann@example.org>\nReply-To: x@example.net\nSubject: Hi\n"
            "Content-Type: text/html\n\nFrom: the body keeps this\n\nReply-To: and this")
    assert drop_sender(full) == ("Subject: Hi\nContent-Type: text/html\n\n"
                                 "From: the body keeps this\n\nReply-To: and this")
    assert drop_sender("Reply-To: x@example.net\nSubject: Hi\n\nbody") == "Subject: Hi\n\nbody"
    assert drop_sender("From: Ann <ann@example.org>\n\nbody") == "body"  # no header left
    assert drop_sender("From: Ann <ann@example.org>") == ""  # a message that is only a sender
    for text in ("Subject: Hi\n\nFrom: me", "body only", "", "from: lower-case is body text"):
        assert drop_sender(text) == text


def test_text_form_applies_sender_then_case_and_rejects_unknown_values() -> None:
    text = "From: ANN <ann@example.org>\nSubject: FREE\n\nNOW"
    assert AS_IS.apply([text]) == [text]
    assert TextForm("lower", "drop").apply([text]) == ["subject: free\n\nnow"]
    assert TextForm("keep", "drop").apply([text]) == ["Subject: FREE\n\nNOW"]
    with pytest.raises(ValueError, match="unknown text sender"):
        TextForm("keep", "hide")
    with pytest.raises(ValueError, match="unknown text case"):
        TextForm("upper")


def test_the_engine_leaves_out_the_sender_when_the_checkpoint_says(
    tmp_path: Path, tiny_classifier: GPTClassifier
) -> None:
    drop = Engine.load(_save(tmp_path, tiny_classifier, "keep", "drop"), device="cpu", workers=1)
    keep = Engine.load(_save(tmp_path, tiny_classifier, "keep"), device="cpu", workers=1)
    signed = [f"From: Ann <ann@example.org>\n{t}" for t in TEXTS]
    assert drop.tokenize(signed) == keep.tokenize(TEXTS) != keep.tokenize(signed)
    assert drop.score_texts(signed) == keep.score_texts(TEXTS)
    raw = b"From: Ann <ann@example.org>\r\nSubject: Lunch?\r\n\r\nSee you at noon\r\n"
    scored = list(drop.score_messages([raw], lambda r: r))
    assert scored[0].score == keep.score_texts(["Subject: Lunch?\n\nSee you at noon"])[0]


def test_split_punct_spaces_every_mark_and_keeps_the_lines() -> None:
    text = ("From: Ann <ann@example.org>\nSubject: Re: 50%  off!!\n\n"
            "It's $1,000.50 -- see www.example.com/a_b\t(today)\n  indented line  ")
    assert split_punct(text) == (
        "From : Ann < ann @ example . org >\nSubject : Re : 50 % off ! !\n\n"
        "It ' s $ 1 , 000 . 50 - - see www . example . com / a _ b ( today )\nindented line")
    # the form Enron-Spam and Ling-Spam come in is left as it is
    corpus_like = "Subject: re : meeting\nthanks , see you on monday .\nfax : 555 - 0142"
    assert split_punct(corpus_like) == corpus_like.replace("Subject:", "Subject :")
    assert split_punct("naïve café 東京") == "naïve café 東京"  # letters of any script are words
    assert split_punct("") == ""


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_split_punct_is_idempotent_and_only_moves_white_space(text: str) -> None:
    split = split_punct(text)
    assert split_punct(split) == split
    assert "".join(split.split()) == "".join(text.split())
    assert split.count("\n") == text.count("\n")


def test_text_form_drops_the_sender_before_splitting_punctuation() -> None:
    text = "From: Ann <ann@example.org>\nSubject: FREE, now!\n\nHi."
    assert TextForm("lower", "drop", "split").apply([text]) == ["subject : free , now !\n\nhi ."]
    assert TextForm("keep", "keep", "split").apply([text]) == [split_punct(text)]
    with pytest.raises(ValueError, match="unknown text punct"):
        TextForm("keep", "keep", "strip")


def test_the_engine_splits_punctuation_when_the_checkpoint_says(
    tmp_path: Path, tiny_classifier: GPTClassifier
) -> None:
    split = Engine.load(_save(tmp_path, tiny_classifier, "keep", "keep", "split"),
                        device="cpu", workers=1)
    keep = Engine.load(_save(tmp_path, tiny_classifier, "keep"), device="cpu", workers=1)
    spaced = [split_punct(t) for t in TEXTS]
    assert split.tokenize(TEXTS) == keep.tokenize(spaced) != keep.tokenize(TEXTS)
    assert split.score_texts(TEXTS) == keep.score_texts(spaced)
