"""The unit every corpus reader produces."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

HAM = 0
SPAM = 1
LABELS = ("ham", "spam")
_CORPUS_END = re.compile(r"[/:]")


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

    @property
    def corpus(self) -> str:
        """The corpus it came from: its source up to the first `/` or `:` (`spamassassin`,
        `enron1`, `lingspam`, `sms`, a mail folder's name)."""
        return _CORPUS_END.split(self.source, maxsplit=1)[0]
