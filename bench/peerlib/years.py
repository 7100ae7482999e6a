"""Newer mail: the SpamAssassin corpus's 2003 folders as a corpus of their own.

The corpus was collected in two rounds: `easy_ham`, `hard_ham` and `spam` (2002) and
`easy_ham_2` and `spam_2` (2003). Training every filter on the 2002 folders (and the other
corpora) and scoring the 2003 ones asks how each copes with the next year's mail, the nearest
thing here to the mail a filter meets after it was trained. `year_root` builds a data root of
symlinks in which `spamassassin` holds only the 2002 folders and `spamassassin-2003` the 2003
ones, so that the readers and the split see two ordinary SpamAssassin-layout corpora.
"""

from __future__ import annotations

from pathlib import Path

from bench.peerlib.corpus import CORPORA

NEWER = "spamassassin-2003"
OLDER_DIRS = ("easy_ham", "hard_ham", "spam")
NEWER_DIRS = ("easy_ham_2", "spam_2")


def year_root(data: Path, root: Path) -> Path:
    """`root`, (re)made as a data root of symlinks into `data`: every corpus of CORPORA as it is,
    except `spamassassin` (only its 2002 folders) and `NEWER` (only its 2003 folders)."""
    sa = data / "spamassassin"
    missing = [d for d in OLDER_DIRS + NEWER_DIRS if not (sa / d).is_dir()]
    if missing:
        raise FileNotFoundError(f"{sa}: no {', '.join(missing)} folder")
    for name, dirs in (("spamassassin", OLDER_DIRS), (NEWER, NEWER_DIRS)):
        corpus = root / name
        corpus.mkdir(parents=True, exist_ok=True)
        for old in corpus.iterdir():  # a root made for other data: relink everything
            if old.is_symlink():
                old.unlink()
        for d in dirs:
            (corpus / d).symlink_to((sa / d).resolve(), target_is_directory=True)
    for name, rels in CORPORA.items():
        if name == "spamassassin":
            continue
        for rel in rels:
            link = root / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                link.unlink()
            link.symlink_to((data / rel).resolve())
    return root


def holds_newer_mail(path: Path) -> bool:
    """True when a corpus path recorded in a checkpoint is (or may be) the whole SpamAssassin
    corpus, 2003 folders included: it has one of them, or it cannot be looked at here."""
    if "spamassassin" not in path.name:
        return False
    if not path.is_dir():
        return True  # recorded elsewhere: cannot tell which folders it had
    return any((path / d).is_dir() for d in NEWER_DIRS)
