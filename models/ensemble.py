"""Several GPT-2 classifiers of one shape scored as one: the mean of their log-odds.

Each member reads the same right-padded ids; the ensemble's logits are (0, mean of the members'
spam-minus-ham logit differences), so softmax gives p(spam) = sigmoid(mean log-odds) and every
caller of a `GPTClassifier` (engine, evaluation) works unchanged. Two members pretrained apart
ranked mail better than either alone in every pairing measured (docs/MODEL.md), at one forward
pass per member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn as nn

from models.classifier import GPTClassifier


class GPTEnsemble(nn.Module):
    """Members' log-odds averaged; two classes (ham, spam) only."""

    def __init__(self, members: Sequence[GPTClassifier], spam_index: int = 1):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        if any(m.head.out_features != 2 for m in members):
            raise ValueError("ensemble members must be two-class classifiers")
        self.members = nn.ModuleList(members)
        self.spam_index = spam_index

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 2) logits whose softmax is sigmoid of the members' mean spam log-odds."""
        odds = torch.stack([self._log_odds(m(idx, lengths)) for m in self.members]).mean(0)
        out = torch.zeros(odds.shape[0], 2, dtype=odds.dtype, device=odds.device)
        out[:, self.spam_index] = odds
        return out

    def classifiers(self) -> list[GPTClassifier]:
        """The members, typed (a ModuleList yields plain Modules)."""
        return [cast(GPTClassifier, m) for m in self.members]

    def _log_odds(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, self.spam_index] - logits[:, 1 - self.spam_index]
