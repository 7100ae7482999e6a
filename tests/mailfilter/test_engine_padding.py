"""Batch widths: rounded up to a few shapes for bf16 on the CPU, scores unchanged by it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from mailfilter.engine import BF16_CPU_PAD_MULTIPLE, Engine
from models.classifier import right_pad


def _lengths_seen(engine: Engine, seqs: list[list[int]]) -> tuple[list[float], list[int]]:
    widths: list[int] = []
    model = engine.model
    real = model.forward

    def spy(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        widths.append(ids.shape[1])
        assert int(lengths.max()) <= ids.shape[1]
        return real(ids, lengths)

    model.forward = spy  # type: ignore[method-assign]
    try:
        return engine.score_ids(seqs), widths
    finally:
        del model.forward


def _seqs(n: int, longest: int) -> list[list[int]]:
    rng = random.Random(3)
    return [[rng.randrange(100, 5000) for _ in range(rng.randint(1, longest))] for _ in range(n)]


def test_right_pad_pads_to_the_minimum_width_when_it_is_wider() -> None:
    ids, lengths = right_pad([[1, 2, 3], [4]], pad_id=0, min_width=5)
    assert ids.tolist() == [[1, 2, 3, 0, 0], [4, 0, 0, 0, 0]] and lengths.tolist() == [3, 1]
    assert right_pad([[1, 2, 3]], min_width=2)[0].shape == (1, 3)


def test_widths_are_multiples_up_to_max_length_and_scores_do_not_change(
    tiny_checkpoint: Path,
) -> None:
    plain = Engine.load(tiny_checkpoint, device="cpu", dtype=torch.float32, workers=1)
    padded = Engine.load(tiny_checkpoint, device="cpu", dtype=torch.float32, workers=1,
                         pad_multiple=24)
    assert plain.pad_multiple == 1 and plain.max_length == 64
    seqs = _seqs(200, 64)
    want, plain_widths = _lengths_seen(plain, seqs)
    got, widths = _lengths_seen(padded, seqs)
    assert len(set(plain_widths)) > 10  # without rounding: many widths
    assert set(widths) <= {24, 48, 64}  # 72 would pass max_length: capped at 64
    assert 64 in widths
    assert got == pytest.approx(want, abs=1e-6)


def test_bf16_on_the_cpu_rounds_widths_by_default(tiny_checkpoint: Path) -> None:
    engine = Engine.load(tiny_checkpoint, device="cpu", dtype=torch.bfloat16, workers=1)
    assert engine.pad_multiple == BF16_CPU_PAD_MULTIPLE
    scores, widths = _lengths_seen(engine, _seqs(100, 64))
    assert set(widths) <= {32, 64} and all(0.0 <= s <= 1.0 for s in scores)
