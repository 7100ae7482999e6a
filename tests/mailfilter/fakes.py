"""A stand-in for the scoring engine, so mailbox tests control every verdict without torch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mailfilter.message import to_text


@dataclass
class FakeScored:
    item: Any
    score: float | None
    error: str | None = None


class FakeEngine:
    """Spam exactly when the model text says "offer"; "unscorable" in it fails that message."""

    threshold = 0.5
    model_id = "fake0000model0001"

    def __init__(self, before_yield: Callable[[Any], None] | None = None) -> None:
        self.before_yield = before_yield

    def score_messages(
        self, items: Iterable[Any], raw_of: Callable[[Any], bytes], chunk_size: int | None = None
    ) -> Iterator[FakeScored]:
        for item in items:
            text = to_text(raw_of(item))
            if "unscorable" in text:
                yield FakeScored(item, None, "ValueError: cannot score")
                continue
            if self.before_yield:
                self.before_yield(item)
            yield FakeScored(item, 0.99 if "offer" in text else 0.01)
