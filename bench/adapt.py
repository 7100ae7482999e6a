"""Benchmark: how fast mailfilter adapts to a new user's mail, beside bogofilter fed the same.

One Enron-Spam mailbox plays a new user. Only its messages in the validation and test splits
(mailfilter's stable split by content hash) are used, so the base model never trained on any of
them. They are shuffled once; the first 50, 100, 200, 500 are "labeled" by the user (ham filed in
the Maildir's INBOX, spam in `.Junk`), the rest are the evaluation set, the same for every step.

At each step the real code paths run in a temporary state dir: `learning.learn` (as `mailfilter
learn --spam ~/Maildir/.Junk --ham ~/Maildir`) and `training.retrain.retrain` (as `mailfilter
retrain`: held-out labels, replay of the base training split, the acceptance test, the model
store), then the installed model scores the evaluation set at its threshold. bogofilter starts
from a wordlist of the same base training split (RFC 822 messages: SpamAssassin files as they
are, Enron and Ling-Spam as `Subject:` + body) and registers the same labeled messages
(`-s`/`-n`); it scores the same evaluation set at its default cutoff (unsure counts as ham).

    python bench/adapt.py [--user enron2] [--checkpoint PATH] [--sizes 50,100,200,500]
                          [--replay-max 1000] [--epochs 3] [--threads 1] [--out docs/]

Writes docs/adapt.png and the results section of docs/adapt.md (and docs/adapt.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import mailbox
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.peerlib.bogofilter import Bogofilter
from bench.peerlib.corpus import write_messages
from mailfilter.learning import learn, model_text
from mailfilter.model_store import ModelStore
from mailfilter.state import State
from training.corpora.dedupe import dedupe
from training.corpora.example import HAM, SPAM, Example
from training.corpora.raw import RawExample, read_raw_corpus
from training.corpora.split import split_examples
from training.job import evaluate_examples
from training.presets import DEFAULT
from training.retrain import RetrainConfig, retrain, sample_replay

log = logging.getLogger("adapt")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BUNDLED = ROOT / "models" / "data" / "default.safetensors"
BEGIN, END = "<!-- adapt:begin -->", "<!-- adapt:end -->"


@dataclass
class Row:
    """One step: how many labeled messages both filters have seen, and their errors."""

    labeled: int
    ham: int
    spam: int
    outcome: str
    threshold: float
    mf_fp: int
    mf_fn: int
    mf_auc: float
    bogo_fp: int
    bogo_fn: int
    retrain_s: float
    reason: str = ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--user", default="enron2", help="enron1..enron5: the new user's mailbox")
    ap.add_argument("--checkpoint", type=Path, help="base model (default: the bundled one)")
    ap.add_argument("--data", type=Path, default=DATA, help="root of the shared corpora")
    ap.add_argument("--sizes", default="50,100,200,500", help="labeled messages at each step")
    ap.add_argument("--replay-max", type=int, default=1000)
    ap.add_argument("--replay-val-max", type=int, default=5000, help="5000: all of the val split")
    ap.add_argument("--lr", type=float, default=RetrainConfig.lr)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    return ap.parse_args(argv)


def read_all(data: Path) -> dict[str, list[RawExample]]:
    """The default preset's corpora, deduplicated together and split as its training did."""
    raws = [r for rel in DEFAULT.corpora for r in read_raw_corpus(data / rel).examples]
    by_id = {id(r.example): r for r in raws}
    kept, report = dedupe(r.example for r in raws)
    log.info("corpora: %s", report.describe())
    return {name: [by_id[id(e)] for e in items] for name, items in split_examples(kept).items()}


def evaluate(path: Path, items: list[Example]) -> tuple[int, int, float, float]:
    """FP, FN and ROC AUC of a checkpoint at its own threshold, and that threshold."""
    m = evaluate_examples(path, items)
    return m.fp, m.fn, m.roc_auc, m.threshold


def bogo_errors(bogo: Bogofilter, files: list[Path], labels: list[int]) -> tuple[int, int]:
    """bogofilter's false positives and false negatives at its own cutoff."""
    scores = bogo.score(files)
    fp = sum(s.spam and y == HAM for s, y in zip(scores, labels, strict=True))
    fn = sum(not s.spam and y == SPAM for s, y in zip(scores, labels, strict=True))
    return fp, fn


def message_counts(bogo: Bogofilter) -> str:
    """The wordlist's `.MSG_COUNT` (spam, good): proof that every registration landed."""
    out = subprocess.run(
        ["bogoutil", "-w", str(bogo.db), ".MSG_COUNT"], capture_output=True, text=True, check=True
    ).stdout
    spam, good = out.split()[-2:]
    return f"{spam} spam + {good} ham"


def run(args: argparse.Namespace, work: Path) -> tuple[list[Row], dict[str, Any]]:
    """The whole experiment in `work`; the rows and a description of the setup."""
    base = args.checkpoint or BUNDLED
    if not base.exists():
        raise SystemExit(f"no base model: {base} (pass --checkpoint)")
    started = time.perf_counter()
    splits = read_all(args.data)
    prefix = f"{args.user}/"
    pool = [r for name in ("val", "test") for r in splits[name]
            if r.example.source.startswith(prefix)]  # fmt: skip
    random.Random(args.seed).shuffle(pool)
    sizes = [n for n in map(int, args.sizes.split(",")) if n < len(pool)]
    feed, held = pool[: sizes[-1]], pool[sizes[-1] :]
    eval_ex = [Example(model_text(r.message), r.example.label, r.example.source) for r in held]
    eval_labels = [e.label for e in eval_ex]
    pool_texts = {r.example.text for r in pool}
    replay = sample_replay(
        [r.example for r in splits["train"]],
        [r.example for r in splits["val"] if r.example.text not in pool_texts],
        args.replay_max, args.replay_val_max, [args.data / c for c in DEFAULT.corpora],
    )  # fmt: skip
    read_s = time.perf_counter() - started
    log.info("pool %d (feed %d, evaluate %d); read in %.0fs", len(pool), len(feed), len(held),
             read_s)  # fmt: skip

    bogo = Bogofilter(work / "bogo")
    train = splits["train"]
    bogo.train(
        write_messages([r for r in train if r.example.label == HAM], work / "base-ham"),
        write_messages([r for r in train if r.example.label == SPAM], work / "base-spam"),
    )
    eval_files = write_messages(held, work / "eval")

    state = State.open(work / "state" / "state.sqlite3")
    store = ModelStore(work / "models")
    maildir = mailbox.Maildir(work / "Maildir", create=True)
    junk = maildir.add_folder("Junk")
    cfg = RetrainConfig(
        min_labels=20, replay_max=args.replay_max, replay_val_max=args.replay_val_max,
        epochs=args.epochs, lr=args.lr, device="cpu",
    )  # fmt: skip
    fp, fn, auc, threshold = evaluate(base, eval_ex)
    bogo_fp, bogo_fn = bogo_errors(bogo, eval_files, eval_labels)
    rows = [Row(0, 0, 0, "base", threshold, fp, fn, auc, bogo_fp, bogo_fn, 0.0)]
    done = 0
    for n in sizes:
        batch = feed[done:n]
        for r in batch:
            (junk if r.example.label == SPAM else maildir).add(r.message)
        learn(state, spam=[work / "Maildir" / ".Junk"], ham=[work / "Maildir"])
        t0 = time.perf_counter()
        current = store.current if store.current.exists() else base
        result = retrain(state, store, current, cfg, replay=replay)
        retrain_s = time.perf_counter() - t0
        log.info("%d labels: %s (%s) in %.0fs", n, result.outcome, result.reason, retrain_s)
        log.info("current %s; candidate %s", result.current, result.candidate)
        active = store.current if store.current.exists() else base
        fp, fn, auc, threshold = evaluate(active, eval_ex)
        step = n - done
        bogo.train(
            write_messages([r for r in batch if r.example.label == HAM], work / f"ham-{n}"),
            write_messages([r for r in batch if r.example.label == SPAM], work / f"spam-{n}"),
        )
        counts = [r.example.label for r in feed[:n]]
        bogo_fp, bogo_fn = bogo_errors(bogo, eval_files, eval_labels)
        rows.append(Row(n, counts.count(HAM), counts.count(SPAM), result.outcome, threshold, fp,
                        fn, auc, bogo_fp, bogo_fn, retrain_s, result.reason))  # fmt: skip
        log.info("step of %d done: %s", step, rows[-1])
        done = n
    setup = {
        "user": args.user, "base": str(base), "pool": len(pool), "evaluate": len(held),
        "evaluate_ham": eval_labels.count(HAM), "evaluate_spam": eval_labels.count(SPAM),
        "replay_train": len(replay.train), "replay_val": len(replay.val), "epochs": args.epochs,
        "lr": args.lr,
        "threads": args.threads, "seed": args.seed, "bogofilter": bogo.version(),
        "bogofilter_base": len(train), "bogofilter_wordlist": message_counts(bogo),
        "read_seconds": round(read_s),
        "seconds": round(time.perf_counter() - started),
        "machine": f"{platform.machine()} x{torch.get_num_threads()} threads, torch "
        f"{torch.__version__}",
    }  # fmt: skip
    return rows, setup


def table(rows: list[Row], setup: dict[str, Any]) -> str:
    """The results as a markdown table."""
    ham, spam = setup["evaluate_ham"], setup["evaluate_spam"]
    lines = [
        f"| labeled (ham/spam) | mailfilter FP / {ham} ham | mailfilter FN / {spam} spam "
        f"| ROC AUC | threshold | retrain | bogofilter FP | bogofilter FN |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        label = "0 (base)" if r.labeled == 0 else f"{r.labeled} ({r.ham}/{r.spam})"
        why = r.reason.split(" (")[0] if r.outcome == "refused" else ""
        retrain_col = "—" if r.labeled == 0 else f"{r.outcome}{f': {why}' if why else ''}, "
        retrain_col += "" if r.labeled == 0 else f"{r.retrain_s:.0f} s"
        lines.append(
            f"| {label} | {r.mf_fp} | {r.mf_fn} | {r.mf_auc:.4f} | {r.threshold:.4f} "
            f"| {retrain_col} | {r.bogo_fp} | {r.bogo_fn} |"
        )
    return "\n".join(lines)


def plot(rows: list[Row], setup: dict[str, Any], path: Path) -> None:
    """False positives and false negatives against labeled messages, both filters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.labeled for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = (
        ("false positives", "mf_fp", "bogo_fp", setup["evaluate_ham"], "ham"),
        ("false negatives", "mf_fn", "bogo_fn", setup["evaluate_spam"], "spam"),
    )
    for ax, (title, ours, theirs, n, kind) in zip(axes, panels, strict=True):
        ax.plot(x, [getattr(r, ours) for r in rows], "o-", label="mailfilter (learn + retrain)")
        ax.plot(x, [getattr(r, theirs) for r in rows], "s--", label="bogofilter (-s/-n)")
        ax.set_title(f"{title} (of {n} {kind})")
        ax.set_xlabel(f"labeled messages from {setup['user']}")
        ax.set_xscale("symlog", linthresh=50)
        ax.set_xticks(x, [str(v) for v in x])
        top = max(max(getattr(r, ours), getattr(r, theirs)) for r in rows)
        ax.set_ylim(-0.5, max(top * 1.15, 5))
        ax.set_ylabel("messages")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Adapting to a new user ({setup['user']}, evaluated on {setup['evaluate']} of "
                 "their other messages)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_docs(rows: list[Row], setup: dict[str, Any], out: Path) -> None:
    """docs/adapt.png, docs/adapt.json and the results block of docs/adapt.md."""
    out.mkdir(parents=True, exist_ok=True)
    plot(rows, setup, out / "adapt.png")
    (out / "adapt.json").write_text(
        json.dumps({"setup": setup, "rows": [vars(r) for r in rows]}, indent=2) + "\n"
    )
    block = (
        f"{BEGIN}\n{table(rows, setup)}\n\n"
        f"User `{setup['user']}`: a pool of {setup['pool']} messages (its validation and test "
        f"splits), {setup['evaluate']} of them evaluated ({setup['evaluate_ham']} ham, "
        f"{setup['evaluate_spam']} spam). Replay: {setup['replay_train']} base training messages "
        f"at most, {setup['replay_val']} base validation messages; {setup['epochs']} epochs at "
        f"learning rate {setup['lr']:g}. bogofilter: {setup['bogofilter']}, base wordlist of "
        f"{setup['bogofilter_base']} messages (at the end: {setup['bogofilter_wordlist']}). "
        f"Whole run {setup['seconds']} s ({setup['read_seconds']} s reading corpora) on "
        f"{setup['machine']}.\n{END}"
    )
    md = out / "adapt.md"
    text = md.read_text() if md.exists() else f"# Adapting to a new user\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    md.write_text(head + block + tail)


def main(argv: list[str] | None = None) -> None:
    """Run the experiment and write the docs."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="mailfilter-adapt-") as tmp:
        rows, setup = run(args, Path(tmp))
    print(table(rows, setup))
    write_docs(rows, setup, args.out)


if __name__ == "__main__":
    main()
