"""The unit every corpus reader produces."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

HAM = 0
SPAM = 1
LABELS = ("ham", "spam")


@dataclass(frozen=True)
class Example:
    """One labeled message: model text, 0 = ham / 1 = spam, and where it came from."""

    text: str
    label: int
    source: str

    @property
    def content_hash(self) -> str:
        """sha256 of the model text: the key for dedupe and for the stable split."""
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()
