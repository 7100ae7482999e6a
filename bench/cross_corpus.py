"""Benchmark: mail no filter was trained on. Every filter learns from all corpora but one and
scores the held-out corpus's test split.

mailfilter is judged on other people's mail, not on the corpora it was built from; holding one
corpus out is the nearest measurement of that available here. mailfilter is trained with the
default preset on the other corpora's data (`mailfilter train --preset default --data …`, run by
this script unless `--checkpoint` names such a model); bogofilter, spamprobe and SpamAssassin
are trained on the same messages (the union of the other corpora's training splits) and score
the same test messages.

    python bench/cross_corpus.py --holdout enron [--checkpoint PATH] [--work DIR]
                                 [--peers bogofilter,spamprobe,spamassassin] [--out docs/]

`--holdout spamassassin-2003` asks it of newer mail instead (bench/peerlib/years.py): every
filter learns from the SpamAssassin corpus's 2002 folders and the other corpora, and scores every
message of its 2003 folders whose text none of the training corpora holds.

Writes docs/unseen-<holdout>.md and docs/unseen-<holdout>-roc.png.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peerlib.corpus import CORPORA, Split, load_split
from bench.peerlib.ours import score_with_mailfilter
from bench.peerlib.report import FilterResult, markdown_table, page_tail, plot_roc
from bench.peerlib.years import NEWER, NEWER_DIRS, holds_newer_mail, year_root
from bench.peers import describe_machine, parse_common, run_peers

log = logging.getLogger("cross_corpus")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holdout", choices=[*sorted(CORPORA), NEWER], required=True,
                    help=f"the corpus no filter is trained on ({NEWER}: the SpamAssassin "
                         "corpus's 2003 folders, the 2002 ones trained on)")
    ap.add_argument("--checkpoint", type=Path,
                    help="a mailfilter model trained without the held-out corpus "
                         "(default: train one into --work)")
    ap.add_argument("--work", type=Path, default=Path("runs/cross-corpus"),
                    help="where the model is trained when no --checkpoint is given")
    return parse_common(ap, argv)


def training_paths(data: Path, holdout: str) -> list[Path]:
    """The corpus paths every filter learns from: all of CORPORA but the held-out one (for
    NEWER, all of them: under a `year_root`, `spamassassin` is the 2002 folders alone)."""
    return [data / rel for name, rels in sorted(CORPORA.items()) if name != holdout
            for rel in rels]


def unseen_split(data: Path, holdout: str) -> Split:
    """Training messages: the other corpora's training splits; test: the held-out test split.
    For NEWER (under a `year_root`), test is every message of the 2003 folders whose text is
    not in any split of the training corpora: none of it was trained on, so all of it counts."""
    if holdout != NEWER:
        held = load_split(holdout, data)
        test = held.test
        others = [load_split(name, data) for name in sorted(CORPORA) if name != holdout]
    else:
        held = load_split(holdout, data, rels=(NEWER,))
        others = [load_split(name, data) for name in sorted(CORPORA)]
        known = {r.example.text for o in others for r in o.train + o.val + o.test}
        test = [r for r in held.train + held.val + held.test if r.example.text not in known]
        log.info("%s: %d of its messages scored (%d also in the training corpora)", holdout,
                 len(test), len(held.train) + len(held.val) + len(held.test) - len(test))
    train = [r for o in others for r in o.train]
    return Split(corpus=holdout, paths=held.paths, train=train, test=test,
                 dedupe=held.dedupe, to_text=held.to_text)


def train_mailfilter(paths: list[Path], work: Path) -> Path:
    """`mailfilter train --preset default` on `paths` into `work`; the model it writes."""
    cmd = [sys.executable, "-c", "from mailfilter.cli import main; main()", "train",
           "--preset", "default", "--device", "cpu", "-o", str(work)]
    for p in paths:
        cmd += ["--data", str(p)]
    log.info("training: %s", shlex.join(cmd))
    subprocess.run(cmd, check=True)
    return work / "model.safetensors"


def check_unseen(training: dict[str, Any], holdout: str) -> None:
    """Refuse a checkpoint whose recorded training data includes the held-out corpus."""
    data = [str(d).rstrip("/") for d in training.get("data", [])]
    if not data:
        raise SystemExit("the checkpoint does not record its training data; cannot tell "
                         "whether it saw the held-out corpus")
    if holdout == NEWER:
        seen = [d for d in data if holds_newer_mail(Path(d))]
    else:
        seen = [d for d in data for rel in CORPORA[holdout] if d.endswith(rel)]
    if seen:
        raise SystemExit(f"the checkpoint was trained on the held-out corpus: {', '.join(seen)}")


def write_page(path: Path, split: Split, sources: list[Path], table: str,
               results: list[FilterResult], notes: list[str], seconds: float,
               command: str) -> None:
    """The markdown page: what was trained on, what was scored, the table, settings, notes."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if split.corpus == NEWER:
        others = ", ".join(sorted(set(CORPORA) - {"spamassassin"}))
        trained = f"the training splits of {others} and the SpamAssassin corpus's 2002 folders"
        scored = (f"every message of the SpamAssassin corpus's 2003 folders "
                  f"({', '.join(NEWER_DIRS)}) whose text no training corpus holds, none of "
                  "which any filter saw in training")
    else:
        trained = f"the training splits of {', '.join(sorted(set(CORPORA) - {split.corpus}))}"
        scored = (f"the test split of {', '.join(p.name for p in split.paths)}, which no "
                  "filter saw in training")
    lines = [
        f"# Unseen mail: every filter trained without {split.corpus}",
        "",
        f"Generated by `{command}` on {when} ({seconds / 60:.1f} min); {describe_machine()}.",
        "",
        f"- Trained on {split.counts(split.train)}: {trained} ({len(sources)} paths).",
        f"- Tested on {split.counts(split.test)}: {scored}.",
        "- Error rates are each filter's own verdict at its default cutoff (mailfilter: the "
        "threshold its training chose on the other corpora's validation split); ROC AUC and "
        "'spam missed at 0 false positives' (at a cutoff chosen with hindsight to flag no "
        "test ham) use the continuous score.",
        "",
        *page_tail(table, results, path.stem, notes),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Train (unless given a checkpoint), score, compare, write the page."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="cross_corpus: %(levelname)s: %(message)s")
    started = time.perf_counter()
    data = args.data
    held = [data / r for r in CORPORA.get(args.holdout, ("spamassassin",))]
    missing = [p for p in training_paths(data, args.holdout) + held if not p.exists()]
    if missing:
        print(f"skip: corpora not found: {', '.join(map(str, missing))} (needs ../shared/data)",
              file=sys.stderr)
        return 2
    if args.holdout == NEWER:
        try:
            data = year_root(args.data, args.work / "data")
        except FileNotFoundError as e:
            print(f"skip: {e} (needs the whole SpamAssassin corpus)", file=sys.stderr)
            return 2
    sources = training_paths(data, args.holdout)
    checkpoint = args.checkpoint or train_mailfilter(sources, args.work)
    split = unseen_split(data, args.holdout)
    labels = [r.example.label for r in split.test]
    ours = score_with_mailfilter(checkpoint, [r.raw for r in split.test], split.to_text,
                                 args.threads)
    check_unseen(ours.training, args.holdout)
    results = [FilterResult(name="mailfilter", version=ours.model_id, settings=ours.description,
                            scores=ours.scores, score_seconds=ours.seconds, train_seconds=None)]
    notes = [f"mailfilter: {checkpoint} (its recorded training data: "
             f"{', '.join(map(str, ours.training.get('data', [])))})."]
    results += run_peers(split, args.peers, args.spamd_children, notes)
    table = markdown_table(results, labels)
    print(f"unseen {split.corpus}: train {split.counts(split.train)}, "
          f"test {split.counts(split.test)}")
    print(table)
    page = args.out / f"unseen-{split.corpus}.md"
    command = shlex.join(["python", "bench/cross_corpus.py",
                          *(sys.argv[1:] if argv is None else argv)])
    write_page(page, split, sources, table, results, notes, time.perf_counter() - started,
               command)
    scored = "2003 mail" if split.corpus == NEWER else f"{split.corpus}'s test split"
    plot_roc(results, labels, args.out / f"unseen-{split.corpus}-roc.png",
             f"ROC on {scored}, trained without it ({len(labels)} messages)")
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
