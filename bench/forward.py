"""Benchmark: the engine's forward pass per checkpoint and CPU dtype, on the same messages.

What a CPU without native bfloat16 gets (the engine scores in float32 there) can be estimated on
one with it: this runs `Engine.score_ids` over the SpamAssassin public corpus's texts (from
../shared/data) for every checkpoint in float32 and in bfloat16, in this one process, rounds
alternated so that a drift in machine speed lands on every row alike, and prints messages/s
(medians) as JSON, each row also as a ratio to the first checkpoint's float32.

    python bench/forward.py [--checkpoint PATH]... [--limit N] [--threads N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scan import corpus_files
from mailfilter.engine import Engine, bundled_checkpoint_path
from mailfilter.message import to_text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "spamassassin"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class Row:
    """One checkpoint in one dtype, with its tokenised messages and its timed rounds."""

    dtype: str
    engine: Engine
    ids: list[list[int]]
    seconds: list[float] = field(default_factory=list)


def corpus_texts(limit: int | None) -> list[str]:
    """The corpus's messages as `to_text` reads them, in a fixed order."""
    return [to_text(p.read_bytes()) for p in corpus_files(CORPUS, limit)]


def main() -> int:
    """Run the benchmark and print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, action="append", default=None,
                    help="repeatable; default: the bundled model")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"skip: {CORPUS} not found (needs ../shared/data)", file=sys.stderr)
        return 0
    texts = corpus_texts(args.limit)
    rows: list[Row] = []
    for path in args.checkpoint or [bundled_checkpoint_path()]:
        for name, dtype in DTYPES.items():
            engine = Engine.load(path, device="cpu", threads=args.threads, dtype=dtype)
            ids = engine.tokenize(texts)
            engine.score_ids(ids[: engine.batch_size])  # warm-up
            rows.append(Row(name, engine, ids))
    for _ in range(args.repeat):
        for row in rows:
            start = time.perf_counter()
            row.engine.score_ids(row.ids)
            row.seconds.append(time.perf_counter() - start)
    rates = [len(texts) / statistics.median(row.seconds) for row in rows]
    out = [{"model": row.engine.model_id, "max_length": row.engine.max_length,
            "dtype": row.dtype, "seconds": [round(x, 2) for x in row.seconds],
            "messages_per_second": round(rate, 1),
            "ratio_to_first_float32": round(rate / rates[0], 3)}
           for row, rate in zip(rows, rates, strict=True)]
    print(json.dumps({"messages": len(texts), "threads": torch.get_num_threads(),
                      "rows": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
