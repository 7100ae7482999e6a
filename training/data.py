"""Token-id datasets and the collate that right-pads each batch to its longest sequence."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from models.classifier import right_pad
from models.tokenizer import AS_IS, EOT_ID, TextForm, encode_batch
from training.corpora.example import Example


@dataclass(frozen=True)
class Batch:
    """Right-padded ids (B, T), real lengths (B,), labels (B,)."""

    ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor


class TokenizedSet:
    """Examples tokenised once, truncated to `max_length` tokens (the head is kept)."""

    def __init__(
        self,
        examples: Sequence[Example],
        max_length: int,
        encoded: Sequence[list[int]] | None = None,
        form: TextForm = AS_IS,
    ) -> None:
        """`encoded`: the examples' full token ids when the caller has them already (already
        in the model's form); else the texts are put in `form` (the checkpoint's) and tokenised."""
        self.max_length = max_length
        if encoded is None:
            encoded = encode_batch(form.apply([e.text for e in examples]))
        self.ids = [ids[:max_length] or [EOT_ID] for ids in encoded]
        self.labels = [e.label for e in examples]

    def __len__(self) -> int:
        return len(self.labels)

    def longest(self) -> int:
        """Length of the longest (truncated) sequence."""
        return max((len(i) for i in self.ids), default=1)


def collate(seqs: Sequence[list[int]], labels: Sequence[int], pad_id: int = EOT_ID) -> Batch:
    """Right-pad sequences with `pad_id` to the longest one in this batch."""
    ids, lengths = right_pad(seqs, pad_id)
    return Batch(ids=ids, lengths=lengths, labels=torch.tensor(list(labels), dtype=torch.long))


def batches(
    data: TokenizedSet,
    batch_size: int,
    shuffle: bool,
    rng: random.Random | None = None,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """Batches in random order (training) or by length (evaluation, less padding)."""
    order = list(range(len(data)))
    if shuffle:
        (rng or random.Random(0)).shuffle(order)
    else:
        order.sort(key=lambda i: len(data.ids[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        if drop_last and len(chunk) < batch_size:
            break
        yield collate([data.ids[i] for i in chunk], [data.labels[i] for i in chunk])


def num_batches(data: TokenizedSet, batch_size: int, drop_last: bool = False) -> int:
    """How many batches `batches` yields."""
    return len(data) // batch_size if drop_last else -(-len(data) // batch_size)
