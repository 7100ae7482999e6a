"""Benchmark: mailfilter beside bogofilter, spamprobe and SpamAssassin, on mailfilter's own split.

Each peer is trained on exactly the training split the mailfilter model was trained on, then
scores the same test split; one table compares accuracy, error rates (each filter's own verdict
at its default cutoff), ROC AUC (its continuous score) and scoring throughput. Nothing is
installed here: a missing peer is reported with the command that installs it, and skipped.

    python bench/peers.py [--corpus spamassassin|enron|lingspam] [--checkpoint PATH]
                          [--no-mailfilter] [--peers bogofilter,spamprobe,spamassassin]
                          [--limit N] [--out docs/]

Writes docs/peers-<corpus>.md (the table and how it was made) and docs/peers-<corpus>-roc.png.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peerlib.bogofilter import Bogofilter
from bench.peerlib.corpus import (
    CORPORA,
    SPLIT_NOTE,
    Split,
    load_split,
    training_note,
    write_messages,
)
from bench.peerlib.ours import score_with_mailfilter
from bench.peerlib.peer import Peer, PeerError, PeerMissingError
from bench.peerlib.report import FilterResult, markdown_table, page_tail, plot_roc
from bench.peerlib.spamassassin import SpamAssassin
from bench.peerlib.spamprobe import SpamProbe
from mailfilter.engine import EngineError, bundled_checkpoint_path
from training.corpora.example import HAM, SPAM

log = logging.getLogger("peers")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DOCS = Path(__file__).resolve().parents[1] / "docs"
PEERS: dict[str, type[Peer]] = {
    "bogofilter": Bogofilter,
    "spamprobe": SpamProbe,
    "spamassassin": SpamAssassin,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="spamassassin")
    ap.add_argument("--checkpoint", type=Path, action="append", default=None,
                    help="mailfilter checkpoint (default: the bundled model); repeat to compare "
                    "several, one row each")
    ap.add_argument("--no-mailfilter", action="store_true", help="compare the peers only")
    ap.add_argument("--limit", type=int, default=None,
                    help="at most N train and N test messages (stratified), for a quick run")
    return parse_common(ap, argv)


def parse_common(ap: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Add the options every peer comparison takes (data, peers, spamd children, threads, out),
    parse, and turn --peers into a checked list of names."""
    ap.add_argument("--data", type=Path, default=DATA, help="root of the shared corpora")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help=f"comma-separated subset of {', '.join(PEERS)}")
    ap.add_argument("--spamd-children", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for mailfilter")
    ap.add_argument("--out", type=Path, default=DOCS, help="where the .md and .png go")
    args = ap.parse_args(argv)
    args.peers = [name for name in args.peers.split(",") if name]
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        ap.error(f"unknown peers: {', '.join(sorted(unknown))}")
    return args


def checkpoint_label(path: Path) -> str:
    """`bundled` for the packaged model, else the checkpoint's directory name."""
    return "bundled" if path.resolve() == bundled_checkpoint_path().resolve() else path.parent.name


def run_mailfilter(split: Split, checkpoints: list[Path], threads: int | None,
                   notes: list[str]) -> list[FilterResult]:
    """Score the test split with each mailfilter checkpoint; one that cannot load is a note."""
    results = []
    for path in checkpoints:
        name = "mailfilter" if len(checkpoints) == 1 else f"mailfilter ({checkpoint_label(path)})"
        try:
            run = score_with_mailfilter(path, [r.raw for r in split.test], split.to_text, threads)
        except EngineError as e:
            log.warning("%s skipped: %s", name, e)
            notes.append(f"{name} not run: {e}")
            continue
        notes.append(f"{name}: {training_note(split, run.training)}")
        results.append(FilterResult(name=name, version=run.model_id, settings=run.description,
                                    scores=run.scores, score_seconds=run.seconds,
                                    train_seconds=None))
    return results


def run_peer(peer: Peer, ham: list[Path], spam: list[Path], test: list[Path]) -> FilterResult:
    """Train a peer, start it, score the test files; the scoring phase alone is timed as such."""
    with peer:
        version, settings = peer.version(), peer.settings()
        log.info("%s: training on %d ham + %d spam", peer.name, len(ham), len(spam))
        started = time.perf_counter()
        peer.train(ham, spam)
        trained = time.perf_counter() - started
        peer.start()
        log.info("%s: trained in %.0f s; scoring %d messages", peer.name, trained, len(test))
        started = time.perf_counter()
        scores = peer.score(test)
        seconds = time.perf_counter() - started
    log.info("%s: scored in %.1f s", peer.name, seconds)
    return FilterResult(name=peer.name, version=version, settings=settings, scores=scores,
                        score_seconds=seconds, train_seconds=trained)


def run_peers(split: Split, names: list[str], children: int,
              notes: list[str]) -> list[FilterResult]:
    """Write the split's messages to a temporary directory and run each named peer on them."""
    results: list[FilterResult] = []
    with tempfile.TemporaryDirectory(prefix="mailfilter-peers-") as tmp:
        work = Path(tmp)
        ham = write_messages([r for r in split.train if r.example.label == HAM], work / "ham")
        spam = write_messages([r for r in split.train if r.example.label == SPAM], work / "spam")
        test = write_messages(split.test, work / "test")
        for name in names:
            peer = (SpamAssassin(work, children=children) if name == "spamassassin"
                    else PEERS[name](work))
            try:
                peer.check_installed()
                results.append(run_peer(peer, ham, spam, test))
            except PeerMissingError as e:
                log.warning("%s", e)
                notes.append(f"Not run: {e}.")
            except PeerError as e:
                log.error("%s failed: %s", peer.name, e)
                notes.append(f"{peer.name} failed: {e}")
    return results


def describe_machine() -> str:
    """CPU count, platform and load, which all bear on messages/s."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.machine()} × {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}, load average {load}")


def write_report(path: Path, split: Split, results: list[FilterResult], table: str,
                 notes: list[str], limit: int | None, seconds: float, machine: str,
                 command: str) -> None:
    """The markdown page: what was compared, on what, the table, per-filter settings, notes."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# mailfilter and the filters users run today: {split.corpus}",
        "",
        f"Generated by `{command}` on {when} ({seconds / 60:.1f} min); {machine}.",
        "",
        f"- Corpus: {', '.join(str(p.name) for p in split.paths)}; "
        f"dedupe: {split.dedupe.describe()}.",
        f"- Trained on {split.counts(split.train)}; tested on {split.counts(split.test)}"
        + (f" (stratified subset, --limit {limit})." if limit else "."),
        "- Accuracy and error rates are each filter's own verdict at its default cutoff; "
        "ROC AUC uses its continuous score, and so does 'spam missed at 0 false positives' "
        "(the spam scored at or below the highest-scoring test ham: what the filter's ranking "
        "would miss at a cutoff chosen, with hindsight, to flag no test ham); "
        "messages/s is test messages over the wall time "
        "of the scoring phase (other jobs may share the machine: compare rows, not runs).",
        "",
        *page_tail(table, results, path.stem, [SPLIT_NOTE, *notes]),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the comparison, print the table, write the docs page and ROC plot."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="peers: %(levelname)s: %(message)s")
    started = time.perf_counter()
    machine = describe_machine()
    split = load_split(args.corpus, args.data, args.limit)
    labels = [r.example.label for r in split.test]
    notes: list[str] = []
    results: list[FilterResult] = []
    if not args.no_mailfilter:
        checkpoints = args.checkpoint or [bundled_checkpoint_path()]
        results += run_mailfilter(split, checkpoints, args.threads, notes)
    results += run_peers(split, args.peers, args.spamd_children, notes)
    if args.no_mailfilter:
        notes.append("mailfilter not run (--no-mailfilter).")
    table = markdown_table(results, labels)
    seconds = time.perf_counter() - started
    print(f"{split.corpus}: train {split.counts(split.train)}, test {split.counts(split.test)}")
    print(table)
    for note in notes:
        print(f"note: {note}")
    page = args.out / f"peers-{split.corpus}.md"
    command = shlex.join(["python", "bench/peers.py", *(sys.argv[1:] if argv is None else argv)])
    write_report(page, split, results, table, notes, args.limit, seconds, machine, command)
    if results:
        plot_roc(results, labels, args.out / f"peers-{split.corpus}-roc.png",
                 f"ROC on the {split.corpus} test split ({len(labels)} messages)")
    print(f"wrote {page}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
