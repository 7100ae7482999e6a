"""mailfilter itself, scored the way the scanner does: raw bytes → `to_text` → model, on the CPU
(a large set in worker processes, as `mailfilter scan` scores a large scan)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.peerlib.peer import PeerScore
from mailfilter.engine import Engine

log = logging.getLogger(__name__)
WARMUP = 8  # messages scored once, untimed, so allocation and first-call costs stay out


@dataclass(frozen=True)
class OurRun:
    """mailfilter's scores on the test messages and how long scoring took."""

    scores: list[PeerScore]
    seconds: float
    threshold: float
    model_id: str
    description: str
    training: dict[str, Any]  # the checkpoint's record of how it was trained


def score_with_mailfilter(checkpoint: Path, raws: Sequence[bytes],
                          to_text: Callable[[bytes], str], threads: int | None = None) -> OurRun:
    """Load the checkpoint on the CPU and score raw messages; the timing includes `to_text`."""
    engine = Engine.load(checkpoint, device="cpu", threads=threads)
    engine.score_texts([to_text(raw) for raw in raws[:WARMUP]])
    started = time.perf_counter()
    scored = list(engine.score_messages(raws, lambda raw: raw, read=to_text))
    seconds = time.perf_counter() - started
    failed = sum(s.score is None for s in scored)
    if failed:
        log.warning("mailfilter: %d messages could not be read; scored 0", failed)
    values = [s.score if s.score is not None else 0.0 for s in scored]
    cfg, members = engine.checkpoint.meta.config, engine.checkpoint.meta.members
    shape = f"{cfg.n_layer} layers × {cfg.n_embd} wide"
    if members > 1:
        shape = f"mean log-odds of {members} models of {shape}"
    description = (f"{checkpoint.name} ({engine.model_id}): {shape}, {engine.max_length} tokens, "
                   f"{engine.device.type} {str(engine.dtype).removeprefix('torch.')}, spam at p ≥ "
                   f"{engine.threshold:.4g}")
    return OurRun(scores=[PeerScore(v, v >= engine.threshold) for v in values], seconds=seconds,
                  threshold=engine.threshold, model_id=engine.model_id, description=description,
                  training=dict(engine.checkpoint.meta.training))
