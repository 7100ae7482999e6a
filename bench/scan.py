"""Benchmark: end-to-end `mailfilter scan --action none` against the engine's bare forward pass.

Copies the SpamAssassin public corpus (from ../shared/data) into a temporary Maildir, then in one
run measures
  1. the engine alone: p(spam) for the corpus's already-tokenised texts (`Engine.score_ids`:
     length-bucketed padded batches through the model, nothing else), in this process with
     its default threads;
  2. the same forward pass split over as many forked one-thread processes as the scan uses
     workers (the model's best throughput here, and the arrangement the scan runs it in);
  3. `mailfilter scan --action none --json` on the Maildir in a child process: reading files,
     parsing (`message.to_text`), tokenising, the model, the state DB; the peak of its process
     tree's memory (PSS summed over the scan and its workers, so shared pages count once).
The overhead is the share of the scan's time not spent in the model: 1 - forward / scan,
against each forward, from the medians of `--repeat` alternated runs (this machine's speed
drifts by ±10% within minutes; alternating keeps a drift from landing on one side only).

    python bench/scan.py [--checkpoint PATH] [--limit N] [--threads N] [--workers N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
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
from training.corpora.rfc822_dirs import NOT_MESSAGES

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "spamassassin"


def corpus_files(corpus: Path, limit: int | None) -> list[Path]:
    """The corpus's message files (not its `cmds` scripts), in a fixed order; the first
    `limit` of them when given."""
    files = sorted(p for d in sorted(corpus.iterdir()) if d.is_dir()
                   for p in d.iterdir() if p.name not in NOT_MESSAGES and p.is_file())
    return files[:limit] if limit else files


def build_maildir(root: Path, limit: int | None) -> list[Path]:
    """Copy the corpus files into root/{cur,new,tmp}/ (new/), returning the copies."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    copies = []
    for i, src in enumerate(corpus_files(CORPUS, limit)):
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
    ap.add_argument("--workers", type=int, default=None,
                    help="scan worker processes (default: the engine's choice)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the engine's")
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
                             batch_size=args.batch_size, workers=args.workers)
        ids = engine.tokenize([to_text(p.read_bytes()) for p in files])
        engine.score_ids(ids[: engine.batch_size])  # warm-up
        forwards, pooled, scans, walls, peaks, report = [], [], [], [], [], {}
        for r in range(args.repeat):  # alternate, so a drift in machine speed hits all alike
            start = time.perf_counter()
            engine.score_ids(ids)
            forwards.append(time.perf_counter() - start)
            pooled.append(forward_in_processes(engine, ids, engine.workers))
            report, wall, peak = run_scan(maildir, Path(tmp) / f"state{r}", args)
            scans.append(report["seconds"])
            walls.append(wall)
            peaks.append(peak)
    forward, scan_seconds = statistics.median(forwards), statistics.median(scans)
    forward_w = statistics.median(pooled)
    print(json.dumps({
        "messages": len(files), "model": engine.model_id, "threads": engine_threads(),
        "scan_workers": engine.workers, "max_length": engine.max_length, "repeats": args.repeat,
        "forward_seconds": [round(x, 2) for x in forwards],
        "forward_in_workers_seconds": [round(x, 2) for x in pooled],
        "scan_seconds": [round(x, 2) for x in scans],
        "forward_messages_per_second": round(len(files) / forward, 1),
        "forward_in_workers_messages_per_second": round(len(files) / forward_w, 1),
        "scan_messages_per_second": round(report["scanned"] / scan_seconds, 1),
        "scan_wall_seconds_with_startup": [round(x, 2) for x in walls],
        "overhead_share": round(1 - forward / scan_seconds, 3),
        "overhead_share_per_repeat": [
            round(1 - f / s, 3) for f, s in zip(forwards, scans, strict=True)
        ],
        "overhead_share_vs_forward_in_workers": round(1 - forward_w / scan_seconds, 3),
        "overhead_share_vs_forward_in_workers_per_repeat": [
            round(1 - f / s, 3) for f, s in zip(pooled, scans, strict=True)
        ],
        "scan_peak_pss_mb": round(max(peaks), 1),
        "scanned": report["scanned"], "spam": report["spam"], "ham": report["ham"],
    }, indent=2))
    return 0


def _forward_part(engine: Engine, ids: list[list[int]], k: int, n: int, barrier: object,
                  out: object) -> None:
    import torch

    torch.set_num_threads(1)
    engine.score_ids(ids[k : k + engine.batch_size])  # warm-up
    barrier.wait()  # type: ignore[attr-defined]
    start = time.perf_counter()
    engine.score_ids(ids[k::n])
    out.put(time.perf_counter() - start)  # type: ignore[attr-defined]


def forward_in_processes(engine: Engine, ids: list[list[int]], n: int) -> float:
    """Seconds for the forward pass over `ids` split across `n` forked one-thread processes
    (the slowest one's time, all started together)."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_forward_part, args=(engine, ids, k, n, barrier, out))
             for k in range(n)]
    for p in procs:
        p.start()
    seconds = max(out.get() for _ in procs)
    for p in procs:
        p.join()
    return seconds


def process_parents() -> dict[int, int]:
    """Each running process's parent pid (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _tree_pss_kb(root: int) -> int:
    """PSS of `root` and all its descendants, in kB (Linux /proc)."""
    parents = process_parents()
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def run_scan(
    maildir: Path, state: Path, args: argparse.Namespace
) -> tuple[dict, float, float]:
    """`mailfilter scan --action none --json` in a child process with its own state dir; its
    report, wall seconds and the peak PSS of its process tree (MB, sampled every second)."""
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    cmd = [sys.executable, "-c", "from mailfilter.cli import main; main()", "scan",
           str(maildir), "--action", "none", "--json", "--device", "cpu"]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if args.checkpoint:
        cmd += ["--checkpoint", str(args.checkpoint)]
    if args.threads:
        env["MAILFILTER_THREADS"] = str(args.threads)
    if args.workers:
        env["MAILFILTER_WORKERS"] = str(args.workers)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_pss_kb(proc.pid))
            time.sleep(1.0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode not in (0, 3):
        raise SystemExit(f"scan failed ({proc.returncode}): {stderr.strip()[-2000:]}")
    return json.loads(stdout), wall, peak / 1024


def engine_threads() -> int:
    """Threads torch uses in this process."""
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
