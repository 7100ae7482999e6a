"""Serving reads exactly the tokens training read: the engine encodes only a text's head."""

from __future__ import annotations

from pathlib import Path

from mailfilter.engine import Engine
from mailfilter.message import to_text
from training.corpora.example import Example
from training.data import TokenizedSet


def test_engine_tokens_equal_the_training_sets(tiny_checkpoint: Path) -> None:
    engine = Engine.load(tiny_checkpoint, device="cpu", threads=1)  # max_length 64
    texts = [
        "",
        "Subject: hi",
        "word " * 5_000,
        "x" * 3_000 + " tail",  # no place to cut within reach: encoded whole
        "  \n\n  spaced   out \t text " * 300,
        to_text(b"Subject: offer\r\nContent-Type: text/html\r\n\r\n" + b"<p>Buy now</p>" * 500),
        "Caf\u00e9 \u65e5\u672c\u8a9e it's 1,000,000 \U0001f600!!! " * 200,
    ]
    examples = [Example(t, i % 2, f"s{i}") for i, t in enumerate(texts)]
    assert engine.tokenize(texts) == TokenizedSet(examples, engine.max_length).ids
