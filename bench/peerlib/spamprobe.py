"""spamprobe: a private database, `good`/`spam` on every training file, `score` in bulk.

`-M` makes every file one message (no mbox splitting). `score` prints `SPAM|GOOD score digest`
per message and never changes the database; the verdict is spamprobe's own (default `-l 0.6`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from bench.peerlib.peer import Peer, PeerError, PeerScore, chunks, run_tool

log = logging.getLogger(__name__)


def parse_score_lines(out: str) -> list[PeerScore]:
    """PeerScores from `score` output lines like `SPAM 0.9999990 <digest>`."""
    scores = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in ("SPAM", "GOOD"):
            scores.append(PeerScore(float(fields[1]), fields[0] == "SPAM"))
    return scores


class SpamProbe(Peer):
    """spamprobe with its own database directory under the work directory."""

    name = "spamprobe"
    programs = ("spamprobe",)

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.db = workdir / "spamprobe"

    def _cmd(self, *args: str | Path) -> list[str | Path]:
        return ["spamprobe", "-M", "-d", self.db, *args]

    def version(self) -> str:
        """`SpamProbe v1.4d`."""
        first = run_tool(["spamprobe", "-V"]).splitlines()[0]
        return first.split(" using ")[0].strip()

    def settings(self) -> str:
        """Cutoffs and options."""
        return "defaults; every training message learned (`good`/`spam`), spam at score ≥ 0.6"

    def train(self, ham: Sequence[Path], spam: Sequence[Path]) -> None:
        """Learn every ham (`good`) and spam (`spam`) file."""
        self.db.mkdir(parents=True, exist_ok=True)
        run_tool(["spamprobe", "-d", self.db, "create-db"])
        for command, files in (("good", ham), ("spam", spam)):
            for part in chunks(files):
                run_tool(self._cmd(command, *part))

    def score(self, files: Sequence[Path]) -> list[PeerScore]:
        """Score each file: one `score` call per chunk, per file if a line goes missing."""
        scores: list[PeerScore] = []
        for part in chunks(files):
            got = parse_score_lines(run_tool(self._cmd("score", *part)))
            if len(got) != len(part):
                log.warning("spamprobe: %d lines for %d files; scoring them one by one",
                            len(got), len(part))
                got = [self._score_one(f) for f in part]
            scores.extend(got)
        return scores

    def _score_one(self, file: Path) -> PeerScore:
        got = parse_score_lines(run_tool(self._cmd("score", file)))
        if len(got) != 1:
            raise PeerError(f"spamprobe printed {len(got)} scores for {file}")
        return got[0]
