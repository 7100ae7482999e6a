"""What every peer filter offers the comparison, and how its command-line programs are run."""

from __future__ import annotations

import logging
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

INSTALL_HINT = "apt-get install bogofilter spamprobe spamassassin spamc"
FILES_PER_CALL = 500  # files named on one command line


class PeerError(Exception):
    """A peer filter could not train or score."""


class PeerMissingError(PeerError):
    """A peer filter's program is not installed."""


@dataclass(frozen=True)
class PeerScore:
    """One message's score from a filter, and the filter's own verdict at its default cutoff."""

    score: float
    spam: bool


class Peer(ABC):
    """A spam filter trained on files and scoring files; used as a context manager."""

    name: str
    programs: tuple[str, ...]

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def check_installed(self) -> None:
        """PeerMissingError naming the first missing program and how to install it."""
        for program in self.programs:
            if shutil.which(program) is None:
                raise PeerMissingError(
                    f"{self.name}: `{program}` not found; install with `{INSTALL_HINT}`")

    @abstractmethod
    def version(self) -> str:
        """The program's version, as it reports it."""

    @abstractmethod
    def settings(self) -> str:
        """One line on how it runs: cutoffs and options."""

    @abstractmethod
    def train(self, ham: Sequence[Path], spam: Sequence[Path]) -> None:
        """Learn every ham and spam file (one RFC 822 message each)."""

    def start(self) -> None:
        """Get ready to score (start a daemon, …); not part of the timed scoring."""
        return None

    @abstractmethod
    def score(self, files: Sequence[Path]) -> list[PeerScore]:
        """Score each file, in order."""

    def close(self) -> None:
        """Stop whatever start() started."""
        return None

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def run_tool(args: Sequence[str | Path], *, ok_codes: Sequence[int] = (0,),
             stdin: bytes | None = None, env: Mapping[str, str] | None = None,
             timeout: float | None = None) -> str:
    """Run a program and return its stdout; PeerError with the end of stderr otherwise."""
    cmd = [str(a) for a in args]
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PeerError(f"{cmd[0]}: {e}") from e
    if done.returncode not in ok_codes:
        tail = done.stderr.decode(errors="replace").strip()[-800:]
        raise PeerError(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''}… exited with "
                        f"{done.returncode}: {tail}")
    return done.stdout.decode(errors="replace")


def chunks(items: Sequence[T], size: int = FILES_PER_CALL) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
