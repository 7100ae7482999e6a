"""Named training recipes; `book` is chapter 6 of Raschka's book, step for step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from models.classifier import Trainable
from training.finetune import FinetuneConfig


@dataclass(frozen=True)
class Preset:
    """Everything that defines a training run apart from where the data lives."""

    name: str
    description: str
    corpora: tuple[str, ...]  # paths relative to the data root
    split: Literal["book", "stable"]
    balance: bool
    base: str
    size: str
    trainable: Trainable
    last_blocks: int
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    max_length: int | None = None  # None: the longest training sequence (the book's choice)
    max_fpr: float | None = None  # None: threshold 0.5; else chosen on validation data


BOOK = Preset(
    name="book",
    description="Chapter 6: SMS Spam Collection, ham undersampled, 70/10/20 seed 123, "
    "GPT-2 124M, last block + final norm + new head, AdamW 5e-5, wd 0.1, 5 epochs, batch 8",
    corpora=("sms-spam-collection/SMSSpamCollection",),
    split="book",
    balance=True,
    base="gpt2",
    size="gpt2",
    trainable="last_blocks",
    last_blocks=1,
    finetune=FinetuneConfig(epochs=5, batch_size=8, lr=5e-5, weight_decay=0.1),
)

PRESETS: dict[str, Preset] = {BOOK.name: BOOK}


class PresetError(ValueError):
    """No preset of that name."""


def get_preset(name: str) -> Preset:
    """A preset by name, or a one-line error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise PresetError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
