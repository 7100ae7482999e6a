"""The SMS Spam Collection reader keeps every line, quotes and all."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import shared_data
from training.corpora.sms import CorpusFormatError, read_sms_collection


def test_unbalanced_quote_does_not_swallow_lines(tmp_path: Path) -> None:
    f = tmp_path / "sms"
    f.write_text('ham\t"Keep ur problems in ur heart\nham\tsecond\nspam\tWIN "now"\n')
    rows = list(read_sms_collection(f))
    assert [(r.label, r.text) for r in rows] == [
        (0, '"Keep ur problems in ur heart'), (0, "second"), (1, 'WIN "now"')]


def test_bad_line_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "sms"
    f.write_text("ham\tok\nnot a label line\n")
    with pytest.raises(CorpusFormatError, match=":2:"):
        list(read_sms_collection(f))


def test_real_file_has_4827_ham_and_747_spam() -> None:
    path = shared_data("sms-spam-collection/SMSSpamCollection")
    counts = Counter(e.label for e in read_sms_collection(path))
    assert counts == {0: 4827, 1: 747}
