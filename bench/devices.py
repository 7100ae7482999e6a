"""Benchmark: the engine's throughput on each device and dtype, and whether verdicts agree.

A GPU machine usually holds no corpus, so the run has two halves:

    python bench/devices.py prepare ids.pkl.gz [--checkpoint PATH]   # where ../shared/data is
    python bench/devices.py run ids.pkl.gz [--checkpoint PATH] [--out engine.json]

`prepare` tokenises the SpamAssassin corpus's stable test split (the same `to_text` and tokenizer
the scanner uses) into a small file of token ids. `run` scores those ids `--repeat` times over
(default 3) with `Engine.score_ids` on CPU (2 threads, then every core; on a CPU with native
bf16 also bf16 on 2 threads, batches padded to their longest and to the engine's multiple of
32 tokens) and, where CUDA is present, on the GPU in float32 and bf16 at batch 32 and 256;
best of 3 timed passes after a warm-up. Verdicts at the checkpoint's threshold are compared
with the 2-thread float32 CPU run, the reference every other figure in docs/ uses.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailfilter.engine import BF16_CPU_PAD_MULTIPLE, Engine, bundled_checkpoint_path, pick_dtype
from models.checkpoint import load_checkpoint

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "spamassassin"


def prepare(out: Path, checkpoint: Path | None) -> int:
    """Tokenise the SpamAssassin test split into `out`."""
    if not CORPUS.is_dir():
        print(f"skip: {CORPUS} not found (needs ../shared/data)", file=sys.stderr)
        return 0
    from training.corpora.dedupe import dedupe
    from training.corpora.formats import read_corpus
    from training.corpora.split import split_examples

    test = split_examples(dedupe(list(read_corpus(CORPUS)))[0])["test"]
    engine = Engine(load_checkpoint(checkpoint or bundled_checkpoint_path()), device="cpu")
    ids = engine.tokenize([e.text for e in test])
    with gzip.open(out, "wb") as f:
        pickle.dump({"ids": ids, "labels": [e.label for e in test]}, f)
    print(f"{len(ids)} messages → {out}")
    return 0


def _bench(
    path: Path | None, seqs: list[list[int]], **kw: Any
) -> tuple[dict[str, Any], list[float]]:
    engine = Engine(load_checkpoint(path or bundled_checkpoint_path()), **kw)
    cuda = engine.device.type == "cuda"
    engine.score_ids(seqs[:512])
    best, scores = float("inf"), []
    for _ in range(3):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        scores = engine.score_ids(seqs)
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    row = {"msg_per_s": round(len(seqs) / best, 1), "dtype": str(engine.dtype).split(".")[-1],
           "batch": engine.batch_size, "pad_multiple": engine.pad_multiple,
           "threshold": engine.threshold}
    return row, scores


def run(ids_file: Path, checkpoint: Path | None, out: Path | None, repeat: int = 3) -> int:
    """Time every device/dtype the machine has; print and optionally write JSON."""
    with gzip.open(ids_file, "rb") as f:
        data = pickle.load(f)
    n = len(data["ids"])
    seqs = data["ids"] * repeat
    report: dict[str, Any] = {
        "messages": len(seqs), "torch": torch.__version__, "cpus": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }  # fmt: skip
    runs: list[tuple[str, dict[str, Any]]] = [
        ("cpu-2threads-fp32", {"device": "cpu", "threads": 2, "dtype": torch.float32}),
        ("cpu-allthreads-fp32",
         {"device": "cpu", "threads": os.cpu_count(), "dtype": torch.float32}),
    ]
    if pick_dtype(torch.device("cpu")) == torch.bfloat16:
        # native bf16: batches padded to their longest (as before), and as the engine pads them
        runs += [(f"cpu-2threads-bf16-pad{m}",
                  {"device": "cpu", "threads": 2, "dtype": torch.bfloat16, "pad_multiple": m})
                 for m in (1, BF16_CPU_PAD_MULTIPLE)]
    if torch.cuda.is_available():
        for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            for batch in (32, 256):
                runs.append((f"cuda-{name}-b{batch}", {"device": "cuda", "dtype": dtype,
                                                       "batch_size": batch}))
    reference: list[float] = []
    for name, kw in runs:
        row, scores = _bench(checkpoint, seqs, **kw)
        if not reference:
            reference = scores[:n]
        else:
            thr = row["threshold"]
            pairs = list(zip(reference, scores[:n], strict=True))
            row["verdicts_differing_from_cpu"] = sum((a >= thr) != (b >= thr) for a, b in pairs)
            row["max_abs_p_diff"] = max(abs(a - b) for a, b in pairs)
        report[name] = row
        print(name, row, flush=True)
    text = json.dumps(report, indent=1)
    if out:
        out.write_text(text + "\n")
    print(text)
    return 0


def main() -> int:
    """`prepare` or `run`."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("prepare", "run"))
    ap.add_argument("ids", type=Path)
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled model")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="score the split this many times over")
    args = ap.parse_args()
    if args.mode == "prepare":
        return prepare(args.ids, args.checkpoint)
    return run(args.ids, args.checkpoint, args.out, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
