"""bench/short_notes.py: the notes are whole messages from the sender asked for, and every
sender form gets a row with a count out of the thirty."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import bench.short_notes as sn
from mailfilter.engine import bundled_checkpoint_path
from mailfilter.message import to_text


def test_each_note_is_a_whole_message_from_the_sender_given() -> None:
    raw = sn.note_message(7, "running late", "stuck in traffic, 10 min", sn.SENDERS[0])
    msg = message_from_bytes(raw, policy=default)
    assert msg["From"] == "Sam Rivera <sam7@example.org>"
    assert {"To", "Date", "Subject", "Message-ID"} <= set(msg.keys())
    text = to_text(raw)
    assert "sam7@example.org" in text and "stuck in traffic, 10 min" in text
    assert len(sn.NOTES) == 30 and len({s for s, _ in sn.NOTES}) == 30


def test_the_table_has_a_row_per_sender_form() -> None:
    rows = sn.table([bundled_checkpoint_path()]).splitlines()
    assert len(rows) == 2 + len(sn.SENDERS)
    for sender, row in zip(sn.SENDERS, rows[2:], strict=True):
        assert row.startswith(f"| `{sender}` |") and " of 30 (max 0." in row
