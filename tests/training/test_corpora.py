"""Corpus readers: every format yields the text the model reads at run time, labeled by layout."""

from __future__ import annotations

import io
import mailbox
import os
import tarfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailfilter.message import text_from_parts, to_text
from training.corpora.enron import read_enron_archive, read_enron_dir
from training.corpora.example import HAM, SPAM, Example
from training.corpora.formats import detect_format, read_corpus
from training.corpora.lingspam import read_lingspam
from training.corpora.mailbox_folders import read_mail_folder, read_maildir, read_mbox
from training.corpora.rfc822_dirs import read_ham_spam_dirs, read_spamassassin
from training.corpora.sms import CorpusFormatError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def rfc822(subject: str, body: str, sender: str = "alice@example.org") -> bytes:
    """A small, valid RFC 822 message."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "bob@example.org"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 02 Sep 2002 12:00:00 +0000"
    msg.set_content(body)
    return msg.as_bytes()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_enron_tar(path: Path, files: dict[str, bytes]) -> Path:
    """A gzipped tarball with the given member names and contents."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file and directory under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            st = os.stat(Path(dirpath, name))
            out[str(Path(dirpath, name).relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def spamassassin_dir(tmp_path: Path) -> Path:
    root = tmp_path / "publiccorpus"
    write(root / "easy_ham" / "00001.aaa", b"From someone  Mon Sep  2 12:00:00 2002\n"
          + rfc822("meeting notes", "See you at ten."))
    write(root / "easy_ham" / "00002.bbb", rfc822("lunch", "Pizza on Friday?"))
    write(root / "easy_ham" / "cmds", b"mv 00001.aaa 00001.aaa\n")
    write(root / "hard_ham" / "00001.ccc", rfc822("newsletter", "This week's news."))
    write(root / "spam" / "00001.ddd", rfc822("WIN MONEY", "Click here now!!!"))
    write(root / "spam" / "cmds", b"")
    write(root / "spam_2" / "00001.eee", rfc822("cheap pills", "Order today."))
    return root


# --- RFC 822 directories -------------------------------------------------------------------


def test_spamassassin_layout_labels_by_directory_and_skips_cmds(spamassassin_dir: Path) -> None:
    examples = list(read_spamassassin(spamassassin_dir))
    assert [(ex.source, ex.label) for ex in examples] == [
        ("spamassassin/easy_ham/00001.aaa", HAM),
        ("spamassassin/easy_ham/00002.bbb", HAM),
        ("spamassassin/hard_ham/00001.ccc", HAM),
        ("spamassassin/spam/00001.ddd", SPAM),
        ("spamassassin/spam_2/00001.eee", SPAM),
    ]


def test_rfc822_text_is_exactly_what_to_text_gives(spamassassin_dir: Path) -> None:
    examples = {ex.source: ex for ex in read_spamassassin(spamassassin_dir)}
    raw = (spamassassin_dir / "spam" / "00001.ddd").read_bytes()
    assert examples["spamassassin/spam/00001.ddd"].text == to_text(raw)


def test_ham_spam_dirs_use_the_root_name_as_corpus(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    write(root / "ham" / "a.eml", rfc822("hello", "hi"))
    write(root / "spam" / "b.eml", rfc822("buy", "now"))
    write(root / "spam" / "nested" / "c.eml", rfc822("buy more", "now"))
    write(root / "spam" / ".hidden", b"not a message")
    assert [(ex.source, ex.label) for ex in read_ham_spam_dirs(root)] == [
        ("mine/ham/a.eml", HAM), ("mine/spam/b.eml", SPAM), ("mine/spam/nested/c.eml", SPAM)]


def test_ham_spam_dirs_need_both_subdirectories(tmp_path: Path) -> None:
    write(tmp_path / "ham" / "a", rfc822("x", "y"))
    with pytest.raises(CorpusFormatError, match="ham/ and spam/"):
        read_ham_spam_dirs(tmp_path)


# --- Enron ---------------------------------------------------------------------------------


def test_enron_archive_is_read_by_member_directory(tmp_path: Path) -> None:
    tar = make_enron_tar(tmp_path / "enron9.tar.gz", {
        "enron9/Summary.txt": b"summary, not a message",
        "enron9/ham/0001.2000-01-01.farmer.ham.txt": b"Subject: gas nomination\r\nsee attached\r\n",
        "enron9/spam/0002.2004-01-01.GP.spam.txt": b"Subject: cheap meds\nbuy now\n",
        "enron9/ham/notes.txt": b"Subject: not an enron file name\n",
    })
    examples = list(read_enron_archive(tar))
    assert examples == [
        Example(text_from_parts("gas nomination", "see attached"), HAM,
                "enron9/ham/0001.2000-01-01.farmer.ham.txt"),
        Example(text_from_parts("cheap meds", "buy now"), SPAM,
                "enron9/spam/0002.2004-01-01.GP.spam.txt"),
    ]


def test_enron_crlf_and_lf_copies_give_the_same_text(tmp_path: Path) -> None:
    tar = make_enron_tar(tmp_path / "e.tar.gz", {
        "e/ham/1.ham.txt": b"Subject: re : hi\r\nline one\r\nline two\r\n",
        "e/ham/2.ham.txt": b"Subject: re : hi\nline one\nline two\n",
    })
    first, second = read_enron_archive(tar)
    assert first.text == second.text
    assert first.content_hash == second.content_hash


def test_enron_falls_back_to_latin1_for_invalid_utf8(tmp_path: Path) -> None:
    tar = make_enron_tar(tmp_path / "e.tar.gz", {
        "e/spam/1.spam.txt": "Subject: caf\u00e9\nna\u00efve\n".encode("latin-1"),
        "e/spam/2.spam.txt": "Subject: caf\u00e9\nna\u00efve\n".encode(),
    })
    latin1, utf8 = read_enron_archive(tar)
    assert latin1.text == utf8.text == text_from_parts("caf\u00e9", "na\u00efve")


def test_enron_file_without_subject_line_is_all_body(tmp_path: Path) -> None:
    tar = make_enron_tar(tmp_path / "e.tar.gz", {"e/ham/1.ham.txt": b"just a body\n"})
    (ex,) = read_enron_archive(tar)
    assert ex.text == text_from_parts("", "just a body")


def test_enron_extracted_directory_matches_the_archive(tmp_path: Path) -> None:
    files = {"enron7/ham/1.ham.txt": b"Subject: a\nb\n",
             "enron7/spam/2.spam.txt": b"Subject: c\nd\n"}
    tar = make_enron_tar(tmp_path / "enron7.tar.gz", files)
    for name, data in files.items():
        write(tmp_path / "x" / name, data)
    assert list(read_enron_dir(tmp_path / "x" / "enron7")) == list(read_enron_archive(tar))


def test_corrupt_or_empty_enron_archive_is_a_format_error(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.tar.gz", b"this is not gzip")
    with pytest.raises(CorpusFormatError, match=r"not a readable tar\.gz"):
        list(read_enron_archive(bad))
    empty = make_enron_tar(tmp_path / "empty.tar.gz", {"x/readme.txt": b"hello"})
    with pytest.raises(CorpusFormatError, match="no \\*/ham/"):
        list(read_enron_archive(empty))


# --- Ling-Spam -----------------------------------------------------------------------------


@pytest.fixture
def lingspam_dir(tmp_path: Path) -> Path:
    bare = tmp_path / "lingspam" / "bare"
    write(bare / "part10" / "9-1msg1.txt", b"Subject: conference\n\ncall for papers\n")
    write(bare / "part2" / "spmsgb1.txt", b"Subject: free\n\nmoney\n")
    write(bare / "part1" / "3-1msg1.txt", b"Subject: re : syntax\n\nnp np\n")
    write(bare / "part1" / "spmsga1.txt", b"Subject: offer\n\nclick\n")
    return bare


def test_lingspam_labels_spmsg_files_as_spam_in_numeric_part_order(lingspam_dir: Path) -> None:
    examples = list(read_lingspam(lingspam_dir))
    assert [(ex.source, ex.label) for ex in examples] == [
        ("lingspam/part1/3-1msg1.txt", HAM),
        ("lingspam/part1/spmsga1.txt", SPAM),
        ("lingspam/part2/spmsgb1.txt", SPAM),
        ("lingspam/part10/9-1msg1.txt", HAM),
    ]
    assert examples[0].text == text_from_parts("re : syntax", "np np")


def test_lingspam_parent_directory_reads_bare(lingspam_dir: Path) -> None:
    assert list(read_lingspam(lingspam_dir.parent)) == list(read_lingspam(lingspam_dir))


# --- Maildir and mbox ----------------------------------------------------------------------


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    path = tmp_path / "Maildir"
    md = mailbox.Maildir(path, create=True)
    md.add(rfc822("in new", "unread"))
    seen = mailbox.MaildirMessage(rfc822("in cur", "read"))
    seen.set_subdir("cur")
    seen.set_flags("S")
    md.add(seen)
    junk = md.add_folder("Junk")
    junk.add(rfc822("junk", "spammy"))
    md.add_folder("Archive").add(rfc822("old", "archived"))
    return path


def test_maildir_reads_cur_and_new_but_no_subfolders_by_default(maildir: Path) -> None:
    examples = list(read_maildir(maildir, HAM))
    assert sorted(ex.text for ex in examples) == sorted(
        [to_text(rfc822("in new", "unread")), to_text(rfc822("in cur", "read"))])
    assert all(ex.label == HAM and ex.source.startswith("maildir:Maildir/") for ex in examples)


def test_maildir_subfolders_all_or_by_name(maildir: Path) -> None:
    everything = list(read_maildir(maildir, HAM, subfolders=True))
    assert len(everything) == 4
    junk = list(read_maildir(maildir, SPAM, subfolders=[".Junk"]))
    assert [ex.source.rsplit("/", 1)[0] for ex in junk] == [
        "maildir:Maildir", "maildir:Maildir", "maildir:Maildir/.Junk"]
    with pytest.raises(CorpusFormatError, match="no Maildir\\+\\+ subfolder Spam"):
        read_maildir(maildir, HAM, subfolders=["Spam"])


def test_maildir_subfolder_is_itself_a_maildir(maildir: Path) -> None:
    (ex,) = read_mail_folder(maildir / ".Junk", SPAM)
    assert ex.label == SPAM and ex.text == to_text(rfc822("junk", "spammy"))


def test_mbox_messages_in_file_order_without_the_envelope_line(tmp_path: Path) -> None:
    path = tmp_path / "Junk.mbox"
    box = mailbox.mbox(path, create=True)
    box.add(rfc822("first", "one"))
    box.add(rfc822("second", "two"))
    box.close()
    examples = list(read_mbox(path, SPAM))
    assert [(ex.source, ex.label) for ex in examples] == [
        ("mbox:Junk.mbox:1", SPAM), ("mbox:Junk.mbox:2", SPAM)]
    assert examples[1].text == to_text(rfc822("second", "two"))
    assert list(read_mail_folder(path, SPAM)) == examples


def test_reading_mail_folders_changes_nothing(maildir: Path, tmp_path: Path) -> None:
    box_path = tmp_path / "inbox"
    box = mailbox.mbox(box_path, create=True)
    box.add(rfc822("hello", "world"))
    box.close()
    before = snapshot(tmp_path)
    list(read_maildir(maildir, HAM, subfolders=True))
    list(read_mbox(box_path, HAM))
    assert snapshot(tmp_path) == before


def test_mail_folder_checks_label_and_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label"):
        read_mbox(write(tmp_path / "box", b""), 2)
    with pytest.raises(CorpusFormatError, match="not an mbox"):
        read_mbox(write(tmp_path / "notes.txt", b"hello"), HAM)
    with pytest.raises(CorpusFormatError, match="not a Maildir"):
        read_maildir(tmp_path, HAM)


# --- format detection ----------------------------------------------------------------------


def test_read_corpus_detects_every_labeled_layout(
        tmp_path: Path, spamassassin_dir: Path, lingspam_dir: Path) -> None:
    sms = write(tmp_path / "SMSSpamCollection", b"ham\tok see you\nspam\tWIN a prize\n")
    tar = make_enron_tar(tmp_path / "enron9.tar.gz", {"enron9/ham/1.ham.txt": b"Subject: a\nb"})
    enron_dir = tmp_path / "enron8"
    write(enron_dir / "ham" / "1.ham.txt", b"Subject: a\nb")
    (enron_dir / "spam").mkdir()
    mine = tmp_path / "mine"
    write(mine / "ham" / "1", rfc822("a", "b"))
    write(mine / "spam" / "1", rfc822("c", "d"))
    expected = {sms: "sms", tar: "enron", enron_dir: "enron", lingspam_dir: "lingspam",
                lingspam_dir.parent: "lingspam", spamassassin_dir: "spamassassin",
                mine: "ham-spam-dirs"}
    assert {path: detect_format(path) for path in expected} == expected
    assert [ex.label for ex in read_corpus(sms)] == [HAM, SPAM]
    assert len(list(read_corpus(spamassassin_dir))) == 5
    assert [ex.source for ex in read_corpus(enron_dir)] == ["enron8/ham/1.ham.txt"]


@pytest.mark.parametrize("layout, message", [
    ("missing", "no such file"),
    ("empty-dir", "unknown corpus layout"),
    ("text-file", "not an SMS TSV"),
    ("mbox", "an mbox has no labels"),
    ("maildir", "a Maildir has no labels"),
])
def test_undetectable_paths_are_one_line_format_errors(
        tmp_path: Path, layout: str, message: str) -> None:
    path = tmp_path / layout
    if layout == "empty-dir":
        path.mkdir()
    elif layout == "text-file":
        write(path, b"label,text\nham,hello\n")
    elif layout == "mbox":
        write(path, b"From x  Mon Sep  2 12:00:00 2002\n" + rfc822("a", "b"))
    elif layout == "maildir":
        mailbox.Maildir(path, create=True)
    with pytest.raises(CorpusFormatError, match=message) as excinfo:
        read_corpus(path)
    assert "\n" not in str(excinfo.value)


# --- parallel conversion -------------------------------------------------------------------


def test_parallel_reading_gives_the_serial_result_in_order(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for i in range(150):
        write(root / ("spam" if i % 3 else "ham") / f"{i:05d}", rfc822(f"message {i}", f"body {i}"))
    serial = list(read_ham_spam_dirs(root, workers=1))
    assert len(serial) == 150
    assert list(read_ham_spam_dirs(root, workers=2)) == serial


# --- the real corpora in ../shared/data ----------------------------------------------------


def real(path: str) -> Path:
    """A corpus path under ../shared/data, or skip the test."""
    full = DATA / path
    if not full.exists():
        pytest.skip(f"../shared/data not present: {full} (see shared/data/SOURCES.md)")
    return full


def label_counts(examples: list[Example], depth: int = 2) -> dict[str, tuple[int, int]]:
    """(ham, spam) per leading `depth` components of the source."""
    out: dict[str, list[int]] = {}
    for ex in examples:
        key = "/".join(ex.source.split("/")[:depth])
        out.setdefault(key, [0, 0])[ex.label] += 1
    return {k: (h, s) for k, (h, s) in out.items()}


def test_real_spamassassin_counts() -> None:
    examples = list(read_corpus(real("spamassassin")))
    assert label_counts(examples) == {
        "spamassassin/easy_ham": (2500, 0), "spamassassin/easy_ham_2": (1400, 0),
        "spamassassin/hard_ham": (250, 0), "spamassassin/spam": (0, 500),
        "spamassassin/spam_2": (0, 1397)}
    assert sum(ex.label == HAM for ex in examples) == 4150
    assert sum(ex.label == SPAM for ex in examples) == 1897
    assert all(ex.text.strip() for ex in examples)


@pytest.mark.slow
def test_real_enron_1_to_5_counts() -> None:
    archives = [real("enron-spam/enron1.tar.gz")] + [
        real(f"enron-spam/repacked/enron{n}.tar.gz") for n in range(2, 6)]
    examples = [ex for archive in archives for ex in read_corpus(archive)]
    assert label_counts(examples, depth=1) == {
        "enron1": (3672, 1500), "enron2": (4361, 1496), "enron3": (4012, 1500),
        "enron4": (1500, 4499), "enron5": (1500, 3675)}
    assert sum(ex.label == HAM for ex in examples) == 15045
    assert sum(ex.label == SPAM for ex in examples) == 12670


def test_real_lingspam_counts() -> None:
    examples = list(read_corpus(real("lingspam/bare")))
    assert sum(ex.label == HAM for ex in examples) == 2412
    assert sum(ex.label == SPAM for ex in examples) == 481
    assert len(label_counts(examples)) == 10


def test_real_sms_counts() -> None:
    examples = list(read_corpus(real("sms-spam-collection/SMSSpamCollection")))
    assert sum(ex.label == HAM for ex in examples) == 4827
    assert sum(ex.label == SPAM for ex in examples) == 747
