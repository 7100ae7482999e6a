"""A compact model vocabulary: the tokenizer ids that occur often enough in the training text.

A model trained from scratch on a few tens of thousands of messages sees most of GPT-2's 50,257
tokens rarely or never; their embeddings stay noise. Mapping rare ids to one shared id shrinks the
embedding (and the language-model softmax in pretraining) and keeps that noise out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch

from models.tokenizer import EOT_ID

UNK = 0  # every tokenizer id outside the vocabulary
EOT = 1  # <|endoftext|>, the pad and separator


def build_token_map(
    seqs: Iterable[list[int]], max_size: int, min_count: int = 2, input_vocab_size: int = 50257
) -> torch.Tensor:
    """LongTensor[input_vocab_size] mapping tokenizer ids to model ids, most frequent first."""
    if max_size < 3:
        raise ValueError("vocabulary needs room for UNK, EOT and at least one token")
    counts: Counter[int] = Counter()
    for ids in seqs:
        counts.update(ids)
    counts.pop(EOT_ID, None)
    # Ties broken by id, so the same text always gives the same map.
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    token_map = torch.full((input_vocab_size,), UNK, dtype=torch.long)
    token_map[EOT_ID] = EOT
    for new_id, token in enumerate(ranked[: max_size - 2], start=2):
        token_map[token] = new_id
    return token_map


def vocab_size_of(token_map: torch.Tensor) -> int:
    """Number of model ids a map uses (its largest id + 1)."""
    return int(token_map.max().item()) + 1
