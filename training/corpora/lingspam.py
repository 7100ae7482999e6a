"""Ling-Spam, bare version: `part1/ … part10/` of `Subject:` + tokenised-body files, where file
names starting with `spmsg` are spam and all others (Linguist list messages) are ham.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from training.corpora.example import HAM, SPAM, Example
from training.corpora.parallel import RawItem, to_examples
from training.corpora.sms import CorpusFormatError
from training.corpora.subject_files import subject_file_text

log = logging.getLogger(__name__)

PART_DIR = re.compile(r"part(\d+)")
SPAM_PREFIX = "spmsg"
# The corpus ships bare/, lemm/, stop/ and lemm_stop/ variants; given their parent, read bare/.
BARE = "bare"


def part_dirs(path: Path) -> list[Path]:
    """The `partN` subdirectories of path, in numeric order."""
    if not path.is_dir():
        return []
    parts = [(int(m.group(1)), p) for p in path.iterdir()
             if p.is_dir() and (m := PART_DIR.fullmatch(p.name))]
    return [p for _, p in sorted(parts)]


def lingspam_root(path: Path) -> Path | None:
    """The directory holding the `partN` folders: path itself or its `bare/`; None if neither."""
    for candidate in (path, path / BARE):
        if part_dirs(candidate):
            return candidate
    return None


def read_lingspam(path: str | Path, *, workers: int | None = None) -> Iterator[Example]:
    """Yield every message of Ling-Spam; `source` reads `lingspam/part1/spmsga1.txt`."""
    path = Path(path)
    root = lingspam_root(path)
    if root is None:
        raise CorpusFormatError(f"{path}: no partN/ subdirectories (Ling-Spam bare layout)")
    return to_examples(_raw_files(part_dirs(root)), subject_file_text, workers)


def _raw_files(parts: list[Path]) -> Iterator[RawItem]:
    for part in parts:
        for file in sorted(part.glob("*.txt")):
            label = SPAM if file.name.startswith(SPAM_PREFIX) else HAM
            yield file.read_bytes(), label, f"lingspam/{part.name}/{file.name}"
        log.debug("lingspam/%s read", part.name)
