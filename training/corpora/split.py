"""Train/val/test splits: a stable one keyed on the content hash, and the book's seeded shuffle.

The stable split puts a message on the same side however the corpus grows or is reordered, so a
test message never leaks into training when files are added. The book's recipe (Raschka,
*Build a Large Language Model From Scratch*, ch. 6) undersamples ham to the spam count, shuffles
with seed 123 and cuts 70/10/20 by position; it is reproduced here with `random.Random`, so the
proportions and sizes match the book but not its exact pandas/NumPy draw.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Mapping, Sequence

from training.corpora.example import HAM, SPAM, Example

SPLITS = ("train", "val", "test")
BUCKETS = 10_000
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
BOOK_FRACTIONS = (0.7, 0.1, 0.2)
BOOK_SEED = 123


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions):
        raise ValueError(f"fractions must be three non-negative numbers, not {fractions!r}")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must sum to 1, not {sum(fractions)}")


def bucket_of(example: Example, seed_salt: str = "") -> int:
    """A number in [0, BUCKETS) fixed by the text (and salt) alone."""
    if seed_salt:
        digest = hashlib.sha256(seed_salt.encode() + b"\0" + example.text.encode(
            "utf-8", "surrogatepass")).hexdigest()
    else:
        digest = example.content_hash
    return int(digest, 16) % BUCKETS


def split_of(example: Example, fractions: Sequence[float] = DEFAULT_FRACTIONS, *,
             seed_salt: str = "") -> str:
    """"train", "val" or "test" for example, decided by a hash of its text: stable across runs."""
    _check_fractions(fractions)
    bucket = bucket_of(example, seed_salt)
    edge = 0.0
    for name, fraction in zip(SPLITS[:-1], fractions[:-1], strict=True):
        edge += fraction
        if bucket < round(edge * BUCKETS):
            return name
    return SPLITS[-1]


def split_examples(examples: Iterable[Example], fractions: Sequence[float] = DEFAULT_FRACTIONS,
                   seed_salt: str = "") -> dict[str, list[Example]]:
    """Examples grouped by split_of, each list in input order."""
    _check_fractions(fractions)
    out: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for ex in examples:
        out[split_of(ex, fractions, seed_salt=seed_salt)].append(ex)
    return out


def balance_by_undersampling(examples: Iterable[Example],
                             seed: int = BOOK_SEED) -> list[Example]:
    """A random sample of the larger class cut to the smaller one's size, then the smaller class.

    As in the book: the (sampled) ham comes first, then the spam, and book_split shuffles.
    """
    items = list(examples)
    ham = [ex for ex in items if ex.label == HAM]
    spam = [ex for ex in items if ex.label == SPAM]
    n = min(len(ham), len(spam))
    rng = random.Random(seed)
    if len(ham) > n:
        ham = rng.sample(ham, n)
    elif len(spam) > n:
        spam = rng.sample(spam, n)
    return ham + spam


def oversample(examples: Sequence[Example], factors: Mapping[str, int]) -> list[int]:
    """Indices into `examples` with each example of a corpus named in `factors` repeated that
    many times (in place, so an epoch reads it that often); other examples once."""
    for corpus, k in factors.items():
        if k < 1:
            raise ValueError(f"oversampling factor for {corpus!r} must be at least 1, not {k}")
    return [i for i, ex in enumerate(examples) for _ in range(factors.get(ex.corpus, 1))]


def book_split(examples: Iterable[Example], seed: int = BOOK_SEED,
               fractions: Sequence[float] = BOOK_FRACTIONS) -> dict[str, list[Example]]:
    """Shuffle with random.Random(seed); train and val are int(n * fraction) long, test the rest."""
    _check_fractions(fractions)
    items = list(examples)
    random.Random(seed).shuffle(items)
    train_end = int(len(items) * fractions[0])
    val_end = train_end + int(len(items) * fractions[1])
    return {"train": items[:train_end], "val": items[train_end:val_end], "test": items[val_end:]}
