"""Enron-Spam, preprocessed version: `enronN.tar.gz` holding `enronN/ham/*.ham.txt` and
`enronN/spam/*.spam.txt`, read straight from the archive (streamed, never extracted to disk).

Each file is a `Subject:` line and a lower-cased, tokenised body; see `subject_files` for the
decoding (UTF-8, latin-1 fallback, line endings normalised so CRLF originals and LF repacks agree).
An extracted `enronN/` directory is read too.
"""

from __future__ import annotations

import logging
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from training.corpora.example import HAM, SPAM, Example
from training.corpora.parallel import RawItem, to_examples
from training.corpora.sms import CorpusFormatError
from training.corpora.subject_files import subject_file_text

log = logging.getLogger(__name__)

LABEL_DIRS = {"ham": HAM, "spam": SPAM}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


def label_of_member(name: str) -> int | None:
    """HAM or SPAM for `…/ham/*.ham.txt` or `…/spam/*.spam.txt`, None for anything else."""
    parts = PurePosixPath(name).parts
    if len(parts) < 2 or parts[-2] not in LABEL_DIRS:
        return None
    if not parts[-1].endswith(f".{parts[-2]}.txt"):
        return None
    return LABEL_DIRS[parts[-2]]


def is_enron_archive(path: Path) -> bool:
    """True when path is a file named like a gzipped tarball (the contents are checked on read)."""
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


def is_enron_dir(path: Path) -> bool:
    """True when path has ham/ and spam/ subdirectories holding `*.ham.txt` / `*.spam.txt`."""
    return all((path / name).is_dir() for name in LABEL_DIRS) and (
        any((path / "ham").glob("*.ham.txt")) or any((path / "spam").glob("*.spam.txt")))


def read_enron_archive(path: str | Path, *, workers: int | None = None) -> Iterator[Example]:
    """Yield every ham/spam file in an Enron-Spam tarball; `source` is the member name."""
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(f"{path}: no such archive")
    return to_examples(_raw_members(path), subject_file_text, workers)


def _raw_members(path: Path) -> Iterator[RawItem]:
    n = 0
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                label = label_of_member(member.name)
                if label is None or not member.isfile():
                    continue
                f = tar.extractfile(member)
                if f is None:
                    continue
                yield f.read(), label, member.name
                n += 1
    except (tarfile.TarError, EOFError, OSError) as e:
        raise CorpusFormatError(f"{path}: not a readable tar.gz archive ({e})") from e
    if n == 0:
        raise CorpusFormatError(f"{path}: no */ham/*.ham.txt or */spam/*.spam.txt members")
    log.debug("%s: %d messages", path, n)


def read_enron_dir(path: str | Path, *, workers: int | None = None) -> Iterator[Example]:
    """Yield an extracted `enronN/` directory, with the same sources as its archive."""
    path = Path(path)
    if not is_enron_dir(path):
        raise CorpusFormatError(f"{path}: expected ham/*.ham.txt and spam/*.spam.txt")
    return to_examples(_raw_files(path), subject_file_text, workers)


def _raw_files(path: Path) -> Iterator[RawItem]:
    corpus = path.resolve().name
    for name, label in LABEL_DIRS.items():
        for file in sorted((path / name).glob(f"*.{name}.txt")):
            yield file.read_bytes(), label, f"{corpus}/{name}/{file.name}"


def read_enron(path: str | Path, *, workers: int | None = None) -> Iterator[Example]:
    """Yield an Enron-Spam tarball or extracted directory."""
    path = Path(path)
    if path.is_dir():
        return read_enron_dir(path, workers=workers)
    return read_enron_archive(path, workers=workers)
