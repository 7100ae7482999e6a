"""GPT-2 sequence classifier: the trunk, a new 2-class head, logits read at the last real token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn as nn

from models.gpt import GPTConfig, GPTTrunk
from models.tokenizer import EOT_ID

Pooling = Literal["last_real", "last_position"]
Trainable = Literal["all", "head", "last_blocks"]


def right_pad(
    seqs: Sequence[Sequence[int]], pad_id: int = EOT_ID, min_width: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's input: ids (B, T) right-padded to the longest (or to `min_width` if
    that is wider), and real lengths (B,)."""
    width = max(min_width, *(len(s) for s in seqs))
    rows = [[*s, *[pad_id] * (width - len(s))] for s in seqs]  # one tensor, not one a row
    return torch.tensor(rows, dtype=torch.long), torch.tensor([len(s) for s in seqs])


class GPTClassifier(nn.Module):
    """GPT-2 trunk + `Linear(n_embd, num_classes)`.

    Batches are right-padded; `lengths` gives each sequence's real length. Under the causal mask
    the hidden state at the last real token never sees a pad, so a message scores the same alone
    or beside longer ones. `last_position` (the book's first variant) is kept for comparison only.
    """

    def __init__(self, config: GPTConfig, num_classes: int = 2, pooling: Pooling = "last_real"):
        super().__init__()
        self.config = config
        self.pooling: Pooling = pooling
        self.transformer = GPTTrunk(config)
        self.head = nn.Linear(config.n_embd, num_classes)

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits, (B, num_classes), for right-padded ids (B, T) and real lengths (B,)."""
        B, T = idx.size()
        if self.pooling == "last_position" or lengths is None:
            pos = torch.full((B,), T - 1, dtype=torch.long, device=idx.device)
        else:
            pos = lengths.to(idx.device) - 1
        return self.head(self.transformer.forward_at(idx, pos))  # (B, num_classes)

    def set_trainable(self, mode: Trainable, last_blocks: int = 1) -> None:
        """Unfreeze everything, the head only, or the last N blocks + final norm + head."""
        for p in self.parameters():
            p.requires_grad = mode == "all"
        if mode == "all":
            return
        for p in self.head.parameters():
            p.requires_grad = True
        if mode == "last_blocks":
            if not 0 <= last_blocks <= self.config.n_layer:
                raise ValueError(f"last_blocks must be 0..{self.config.n_layer}, not {last_blocks}")
            for block in list(self.transformer.h)[self.config.n_layer - last_blocks :]:
                for p in block.parameters():
                    p.requires_grad = True
            for p in self.transformer.ln_f.parameters():
                p.requires_grad = True
