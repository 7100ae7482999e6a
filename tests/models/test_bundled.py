"""The model the package ships: it loads, fits the size budget and is what the preset trains."""

from __future__ import annotations

from mailfilter.engine import Engine, bundled_checkpoint_path
from models.checkpoint import load_checkpoint
from training.presets import DEFAULT


def test_the_bundled_model_is_the_default_preset_within_25_mb() -> None:
    path = bundled_checkpoint_path()
    assert path.stat().st_size <= 25 * 1024 * 1024
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    assert meta.kind == "classifier" and meta.labels == ("ham", "spam")
    assert meta.members == max(1, len(DEFAULT.member_seeds))
    assert meta.max_length == DEFAULT.max_length
    assert meta.text_form == DEFAULT.text_form  # it reads text the way the preset trains it
    assert 0.5 <= meta.threshold < 1.0
    assert meta.training["preset"] == "default"
    if meta.members > 1:
        assert meta.training["member_seeds"] == list(DEFAULT.member_seeds)


def test_the_bundled_model_scores_through_the_engine() -> None:
    engine = Engine(load_checkpoint(bundled_checkpoint_path()), device="cpu", threads=1)
    texts = ["From: a@example.org\nSubject: minutes\n\nNotes from Tuesday's meeting attached.",
             "Subject: hi\n\nok"]
    scores = engine.score_texts(texts)
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
