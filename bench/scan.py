"""Benchmark: end-to-end `mailfilter scan --action none` against the engine's bare forward pass.

Copies the SpamAssassin public corpus (from ../shared/data) into a temporary Maildir, then in one
run measures
  1. the engine alone: p(spam) for the corpus's already-tokenised texts (`Engine.score_ids`:
     length-bucketed padded batches through the model, nothing else);
  2. `mailfilter scan --action none --json` on the Maildir in a child process: reading files,
     parsing (`message.to_text`), tokenising, the model, the state DB; its peak RSS.
The overhead is the share of the scan's time not spent in the model: 1 - forward / scan, from
the medians of `--repeat` alternated forward/scan pairs (this machine's speed drifts by ±10%
within minutes; alternating keeps a drift from landing on one side only).

    python bench/scan.py [--checkpoint PATH] [--limit N] [--threads N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailfilter.engine import Engine
from mailfilter.message import to_text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "spamassassin"


def build_maildir(root: Path, limit: int | None) -> list[Path]:
    """Copy the corpus files into root/{cur,new,tmp}/ (new/), returning the copies."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    files = sorted(p for d in sorted(CORPUS.iterdir()) if d.is_dir()
                   for p in d.iterdir() if p.name != "cmds" and p.is_file())
    if limit:
        files = files[:limit]
    copies = []
    for i, src in enumerate(files):
        dst = root / "new" / f"{1700000000 + i}.M{i}P1.bench"
        shutil.copyfile(src, dst)
        copies.append(dst)
    return copies


def main() -> int:
    """Run the benchmark and print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled model")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3,
                    help="forward/scan pairs, alternated; medians are reported")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"skip: {CORPUS} not found (needs ../shared/data)", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        maildir = Path(tmp) / "Maildir"
        files = build_maildir(maildir, args.limit)
        engine = Engine.load(args.checkpoint, device="cpu", threads=args.threads,
                             batch_size=args.batch_size)
        ids = engine.tokenize([to_text(p.read_bytes()) for p in files])
        engine.score_ids(ids[: args.batch_size])  # warm-up
        forwards, scans, walls, report = [], [], [], {}
        for r in range(args.repeat):  # alternate, so a drift in machine speed hits both alike
            start = time.perf_counter()
            engine.score_ids(ids)
            forwards.append(time.perf_counter() - start)
            report, wall = run_scan(maildir, Path(tmp) / f"state{r}", args)
            scans.append(report["seconds"])
            walls.append(wall)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    forward, scan_seconds = statistics.median(forwards), statistics.median(scans)
    print(json.dumps({
        "messages": len(files), "model": engine.model_id, "threads": engine_threads(),
        "max_length": engine.max_length, "repeats": args.repeat,
        "forward_seconds": [round(x, 2) for x in forwards],
        "scan_seconds": [round(x, 2) for x in scans],
        "forward_messages_per_second": round(len(files) / forward, 1),
        "scan_messages_per_second": round(report["scanned"] / scan_seconds, 1),
        "scan_wall_seconds_with_startup": [round(x, 2) for x in walls],
        "overhead_share": round(1 - forward / scan_seconds, 3),
        "overhead_share_per_repeat": [
            round(1 - f / s, 3) for f, s in zip(forwards, scans, strict=True)
        ],
        "scan_peak_rss_mb": round(peak_rss_mb, 1),
        "scanned": report["scanned"], "spam": report["spam"], "ham": report["ham"],
    }, indent=2))
    return 0


def run_scan(maildir: Path, state: Path, args: argparse.Namespace) -> tuple[dict, float]:
    """`mailfilter scan --action none --json` in a child process with its own state dir."""
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    cmd = [sys.executable, "-c", "from mailfilter.cli import main; main()", "scan",
           str(maildir), "--action", "none", "--json", "--device", "cpu",
           "--batch-size", str(args.batch_size)]
    if args.checkpoint:
        cmd += ["--checkpoint", str(args.checkpoint)]
    if args.threads:
        env["MAILFILTER_THREADS"] = str(args.threads)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout), wall


def engine_threads() -> int:
    """Threads torch uses in this process."""
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
