"""bogofilter: a private wordlist, bulk registration (`-n`/`-s -B`), bulk scoring (`-TT -B`).

`-C` skips /etc/bogofilter.cf, so the compiled-in defaults apply (Debian's file only holds
comments). A message is spam when its spamicity reaches `spam_cutoff`; unsure counts as ham.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bench.peerlib.peer import Peer, PeerError, PeerScore, chunks, run_tool

HAM_OK, SPAM_OK, UNSURE_OK = 1, 0, 2  # bogofilter's exit codes for a classification
CUTOFF_LINE = re.compile(r"^(ham_cutoff|spam_cutoff)\s*=\s*([0-9.]+)", re.MULTILINE)


class Bogofilter(Peer):
    """bogofilter with its own wordlist directory under the work directory."""

    name = "bogofilter"
    programs = ("bogofilter",)

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.db = workdir / "bogofilter"
        self._cutoffs: dict[str, float] | None = None

    def _cmd(self, *args: str | Path) -> list[str | Path]:
        return ["bogofilter", "-C", "-d", self.db, *args]

    def version(self) -> str:
        """`bogofilter version 1.2.5`."""
        return run_tool(["bogofilter", "-V"]).splitlines()[0].strip()

    def cutoffs(self) -> dict[str, float]:
        """ham_cutoff and spam_cutoff as `bogofilter -Q` reports them."""
        if self._cutoffs is None:
            found = dict(CUTOFF_LINE.findall(run_tool(self._cmd("-Q"))))
            if "spam_cutoff" not in found:
                raise PeerError("bogofilter -Q printed no spam_cutoff")
            self._cutoffs = {k: float(v) for k, v in found.items()}
        return self._cutoffs

    def settings(self) -> str:
        """Cutoffs and options."""
        c = self.cutoffs()
        return (f"compiled-in defaults (`-C`); spam at spamicity ≥ {c['spam_cutoff']:g}, "
                f"unsure ({c.get('ham_cutoff', 0):g}–{c['spam_cutoff']:g}) counted as ham")

    def train(self, ham: Sequence[Path], spam: Sequence[Path]) -> None:
        """Register the ham (`-n`) and spam (`-s`) files in bulk."""
        self.db.mkdir(parents=True, exist_ok=True)
        for flag, files in (("-n", ham), ("-s", spam)):
            for part in chunks(files):
                run_tool(self._cmd(flag, "-B", *part))

    def score(self, files: Sequence[Path]) -> list[PeerScore]:
        """Spamicity of each file (`-TT -B` prints `path score` per file)."""
        cutoff = self.cutoffs()["spam_cutoff"]
        found: dict[str, float] = {}
        for part in chunks(files):
            out = run_tool(self._cmd("-TT", "-B", *part), ok_codes=(HAM_OK, SPAM_OK, UNSURE_OK))
            for line in out.splitlines():
                path, _, value = line.rpartition(" ")
                if path:
                    found[path] = float(value)
        missing = [f for f in files if str(f) not in found]
        if missing:
            raise PeerError(f"bogofilter printed no score for {len(missing)} files, e.g. "
                            f"{missing[0]}")
        return [PeerScore(found[str(f)], found[str(f)] >= cutoff) for f in files]
