"""The SMS Spam Collection: `ham|spam<TAB>text` lines, read without quote processing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from training.corpora.example import HAM, SPAM, Example


class CorpusFormatError(ValueError):
    """A corpus file does not have the layout its reader expects."""


def read_sms_collection(path: str | Path) -> Iterator[Example]:
    """Yield every line of the TSV as an Example.

    Lines are split on the first tab only and quotes are left alone: the file has an unbalanced
    `"` that a default CSV reader uses to swallow the two lines after it.
    """
    path = Path(path)
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            label, sep, text = line.partition("\t")
            if not sep or label not in ("ham", "spam"):
                raise CorpusFormatError(f"{path}:{lineno}: expected 'ham|spam<TAB>text'")
            yield Example(text=text, label=SPAM if label == "spam" else HAM,
                          source=f"sms:{path.name}:{lineno}")
