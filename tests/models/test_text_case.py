"""Text case per checkpoint: recorded in the metadata, applied by everything that tokenises."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors import safe_open

from mailfilter.engine import Engine
from models.checkpoint import CheckpointError, CheckpointMeta, read_meta, save_checkpoint
from models.classifier import GPTClassifier
from models.tokenizer import apply_case
from tests.conftest import TINY

TEXTS = ["Subject: FREE Money\n\nClick NOW", "Subject: Lunch?\n\nSee you at Noon, Ann"]


def _save(tmp_path: Path, model: GPTClassifier, text_case: str) -> Path:
    meta = CheckpointMeta(config=TINY, max_length=64, threshold=0.5, text_case=text_case)
    return save_checkpoint(model, meta, tmp_path / f"{text_case}.safetensors")


def test_apply_case() -> None:
    assert apply_case(TEXTS, "keep") == TEXTS
    assert apply_case(TEXTS, "lower") == [t.lower() for t in TEXTS]
    with pytest.raises(ValueError, match="unknown text case"):
        apply_case(TEXTS, "upper")


def test_text_case_round_trips_and_keep_is_not_written(
    tmp_path: Path, tiny_classifier: GPTClassifier
) -> None:
    lower = _save(tmp_path, tiny_classifier, "lower")
    keep = _save(tmp_path, tiny_classifier, "keep")
    assert read_meta(lower).text_case == "lower"
    assert read_meta(keep).text_case == "keep"
    with safe_open(str(keep), framework="pt") as f:  # files from before the field read the same
        assert "text_case" not in (f.metadata() or {})


def test_an_unknown_text_case_is_a_checkpoint_error() -> None:
    md = CheckpointMeta(config=TINY).to_metadata() | {"text_case": "title"}
    with pytest.raises(CheckpointError, match="unknown text case"):
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
