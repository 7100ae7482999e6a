"""Benchmark: the book preset's training step on this machine, against a bare forward+backward.

Runs `mailfilter train --preset book`'s loop on the real SMS Spam Collection with a randomly
initialised GPT-2 124M trunk (OpenAI's weights cannot be had here) for a bounded number of steps,
and in the same run times a bare forward + backward + AdamW step of the same model on the same
batches. The ratio is the training loop's overhead (batching, padding, bookkeeping, evaluation).

    python bench/train_book.py [--steps 10] [--size gpt2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.base_model import RandomSize, build_base_classifier
from training.data import TokenizedSet, batches
from training.finetune import batch_loss, finetune
from training.job import load_examples, make_splits
from training.presets import BOOK

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SMS = DATA / "sms-spam-collection" / "SMSSpamCollection"


def main() -> int:
    """Run the benchmark and print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--size", default="gpt2")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data", type=Path, default=SMS)
    args = ap.parse_args()
    if not args.data.exists():
        print(f"skip: {args.data} not found (needs ../shared/data)", file=sys.stderr)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    splits, _ = make_splits(load_examples([args.data]), BOOK)
    probe = TokenizedSet(splits["train"], 1024)
    length = probe.longest()
    train = TokenizedSet(splits["train"], length)
    val = TokenizedSet(splits["val"], length)
    cfg = replace(BOOK.finetune, max_steps=args.steps, epoch_eval=False)

    torch.manual_seed(123)
    model = build_base_classifier("random", RandomSize.parse(args.size))
    model.set_trainable(BOOK.trainable, BOOK.last_blocks)
    # One untimed step first, so neither measurement pays for allocator and kernel warm-up.
    warm = next(batches(train, cfg.batch_size, shuffle=False))
    batch_loss(model, warm, device).backward()
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    finetune(model, train, val, cfg, device, progress=False)
    loop_seconds = time.perf_counter() - start

    # Bare step: the same model shape, the same batches, forward + backward + AdamW, nothing else.
    torch.manual_seed(123)
    bare = build_base_classifier("random", RandomSize.parse(args.size))
    bare.set_trainable(BOOK.trainable, BOOK.last_blocks)
    bare.train()
    opt = torch.optim.AdamW([p for p in bare.parameters() if p.requires_grad],
                            lr=cfg.lr, weight_decay=cfg.weight_decay)
    prepared = []
    rng = random.Random(cfg.seed)
    for i, b in enumerate(batches(train, cfg.batch_size, shuffle=True, rng=rng)):
        if i >= args.steps:
            break
        prepared.append(b)
    start = time.perf_counter()
    for b in prepared:
        opt.zero_grad(set_to_none=True)
        batch_loss(bare, b, device).backward()
        opt.step()
    bare_seconds = time.perf_counter() - start

    n_examples = sum(len(b.labels) for b in prepared)
    report = {
        "model": args.size, "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "steps": args.steps, "batch_size": cfg.batch_size, "max_length": length,
        "threads": torch.get_num_threads(),
        "loop_seconds_per_step": round(loop_seconds / args.steps, 3),
        "loop_examples_per_second": round(n_examples / loop_seconds, 2),
        "bare_seconds_per_step": round(bare_seconds / args.steps, 3),
        "bare_examples_per_second": round(n_examples / bare_seconds, 2),
        "loop_over_bare": round(loop_seconds / bare_seconds, 3),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
