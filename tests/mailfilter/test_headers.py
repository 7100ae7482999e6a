"""Verdict headers are spliced into the original bytes and come out again byte for byte."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailfilter.headers import (
    HeaderError,
    _strip_by_fields,
    check_subject_prefix,
    field_name,
    looks_like_message,
    spam_level,
    strip_our_headers,
    tag_message,
)
from mailfilter.verdict import Verdict, decide

SPAM = Verdict(score=0.9731, threshold=0.5, label="spam", model_id="abc123")
HAM = Verdict(score=0.0213, threshold=0.5, label="ham", model_id="abc123")
UNSURE = Verdict(score=0.48, threshold=0.5, label="unsure", model_id="abc123")
LF = b"From: a@example.com\nTo: b@example.org\nSubject: Cheap pills\n\nBuy now.\n"
CRLF = LF.replace(b"\n", b"\r\n")


def subject(raw: bytes) -> bytes:
    return next(line for line in raw.split(b"\n") if line.lower().startswith(b"subject:"))


@pytest.mark.parametrize("raw", [LF, CRLF])
@pytest.mark.parametrize("verdict", [SPAM, HAM, UNSURE])
def test_strip_undoes_tag_byte_for_byte(raw: bytes, verdict: Verdict) -> None:
    assert strip_our_headers(tag_message(raw, verdict, "[SPAM]")) == raw


def test_spam_gets_the_spamassassin_headers_at_the_end_of_the_header_block() -> None:
    tagged = tag_message(LF, SPAM)
    head, body = tagged.split(b"\n\n", 1)
    assert body == b"Buy now.\n"
    lines = head.split(b"\n")
    assert lines[:3] == LF.split(b"\n")[:3]
    assert lines[3] == b"X-Spam-Flag: YES"
    assert lines[4].startswith(
        b"X-Spam-Status: Yes, score=0.9731 required=0.5000 tests=MAILFILTER "
    )
    assert b" version=" in lines[4]
    assert lines[5] == b"X-Spam-Level: " + b"*" * 9
    assert lines[6] == b"X-Mailfilter-Score: 0.9731 model=abc123 verdict=spam"
    msg = email.message_from_bytes(tagged, policy=email.policy.default)
    assert msg["X-Spam-Flag"] == "YES"
    assert msg["Subject"] == "Cheap pills"


def test_ham_has_no_spam_flag_and_status_no() -> None:
    tagged = tag_message(LF, HAM)
    assert b"X-Spam-Flag" not in tagged
    assert b"X-Spam-Status: No, score=0.0213" in tagged
    assert b"verdict=ham" in tagged


def test_unsure_is_not_flagged() -> None:
    tagged = tag_message(LF, UNSURE)
    assert b"X-Spam-Flag" not in tagged
    assert b"X-Spam-Status: No," in tagged


def test_crlf_mail_gets_crlf_header_lines() -> None:
    tagged = tag_message(CRLF, SPAM)
    assert b"\n" not in tagged.replace(b"\r\n", b"")
    assert b"X-Spam-Flag: YES\r\n" in tagged


def test_retagging_replaces_our_headers_never_duplicates() -> None:
    twice = tag_message(tag_message(LF, SPAM, "[SPAM]"), HAM, "[SPAM]")
    assert twice.count(b"X-Spam-Status:") == 1
    assert twice.count(b"X-Mailfilter-Score:") == 1
    assert b"X-Spam-Flag" not in twice
    assert subject(twice) == b"Subject: Cheap pills"  # our prefix went with the spam verdict
    assert tag_message(twice, HAM) == twice


def test_tagging_is_idempotent() -> None:
    once = tag_message(LF, SPAM, "[SPAM]")
    assert tag_message(once, SPAM, "[SPAM]") == once


def test_someone_elses_spamassassin_headers_are_replaced() -> None:
    raw = b"X-Spam-Flag: YES\nX-Spam-Status: Yes, score=9.1\n\tafter=fold\nSubject: x\n\nbody\n"
    tagged = tag_message(raw, HAM)
    assert tagged.count(b"X-Spam-Status") == 1
    assert b"after=fold" not in tagged
    assert b"X-Spam-Flag" not in tagged
    assert strip_our_headers(tagged) == b"Subject: x\n\nbody\n"


def test_header_names_match_case_insensitively() -> None:
    raw = b"x-spam-flag: YES\nX-SPAM-LEVEL: ***\nSubject: x\n\nbody\n"
    assert strip_our_headers(raw) == b"Subject: x\n\nbody\n"


def test_subject_prefix_is_added_once_for_spam_only() -> None:
    tagged = tag_message(LF, SPAM, "[SPAM]")
    assert subject(tagged) == b"Subject: [SPAM] Cheap pills"
    assert b"prefix=[SPAM]" in tagged  # how strip_our_headers knows it was us
    assert subject(tag_message(LF, HAM, "[SPAM]")) == b"Subject: Cheap pills"
    assert subject(tag_message(LF, UNSURE, "[SPAM]")) == b"Subject: Cheap pills"


def test_a_subject_that_already_has_the_prefix_is_left_alone() -> None:
    raw = LF.replace(b"Subject: Cheap", b"Subject: [SPAM] Cheap")
    tagged = tag_message(raw, SPAM, "[SPAM]")
    assert subject(tagged) == b"Subject: [SPAM] Cheap pills"
    assert b"prefix=" not in tagged
    assert strip_our_headers(tagged) == raw  # and strip does not take away what was there


def test_folded_and_odd_subjects_round_trip() -> None:
    for subject in (b"Subject:\n folded value", b"Subject:x", b"Subject:   \n\tx", b"subject: y"):
        raw = b"From: a@b\n" + subject + b"\n\nbody\n"
        tagged = tag_message(raw, SPAM, "*** SPAM ***")
        assert b"*** SPAM *** " in tagged
        assert strip_our_headers(tagged) == raw


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"Subject: no newline at all",
        b"From: a@b\nSubject: no body, unterminated",
        b"From: a@b\nSubject: folded,\n unterminated",
        b"From: a@b\nSubject: no body\n",
        b"\nbody only\n",
        b"From someone Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n",
        b"Subject: x\n\n",
        b"Subject: x\r\n\r\nmixed\nendings\r\n",
    ],
)
def test_edge_cases_round_trip(raw: bytes) -> None:
    tagged = tag_message(raw, SPAM, "[SPAM]")
    assert tagged.count(b"X-Spam-Flag: YES") == 1
    assert strip_our_headers(tagged) == raw


def test_our_headers_in_the_body_are_not_touched() -> None:
    raw = b"Subject: x\n\nX-Spam-Flag: YES\nX-Mailfilter-Score: 1 prefix=x\n"
    assert strip_our_headers(raw) == raw
    assert tag_message(raw, HAM).endswith(b"\n\nX-Spam-Flag: YES\nX-Mailfilter-Score: 1 prefix=x\n")


_header_name = st.text(alphabet="ABCXYZabcxyz-", min_size=1, max_size=12)
_value = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" "))


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    lines = []
    for name, value, fold in draw(st.lists(st.tuples(_header_name, _value, st.booleans()))):
        lines.append(name.encode() + b": " + value + eol)
        if fold:
            lines.append(b"\t" + value + eol)
    if draw(st.booleans()):
        lines.append(b"Subject: " + draw(_value) + eol)
    body = draw(st.binary(max_size=200))
    tail = draw(st.sampled_from([b"", eol + body, eol]))
    raw = b"".join(lines) + tail
    return raw if draw(st.booleans()) else raw.rstrip(b"\r\n")


@settings(max_examples=300, deadline=None)
@given(raw=messages(), score=st.floats(0, 1), threshold=st.floats(0, 1))
def test_property_strip_of_tag_is_identity(raw: bytes, score: float, threshold: float) -> None:
    verdict = decide(score, threshold, "m0")
    for prefix in (None, "[SPAM]"):
        tagged = tag_message(raw, verdict, prefix)
        assert strip_our_headers(tagged) == raw
        assert tag_message(tagged, verdict, prefix) == tagged


@given(score=st.floats(0, 1), threshold=st.floats(0, 1))
def test_property_five_stars_or_more_exactly_for_spam(score: float, threshold: float) -> None:
    stars = spam_level(score, threshold)
    assert set(stars) <= {"*"} and len(stars) <= 10
    assert (len(stars) >= 5) == (score >= threshold)


def test_looks_like_mail() -> None:
    assert looks_like_message(LF)
    assert looks_like_message(b"From x Mon Jan  1 00:00:00 2024\n" + LF)
    assert not looks_like_message(b"")
    assert not looks_like_message(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    assert not looks_like_message(b"just some text\nwithout headers\n")
    assert not looks_like_message(b"Subject: a\x00b\n\nbody\n")
    assert looks_like_message(b"Subject: a\n\nbinary \x00 body is fine\n")


def test_subject_prefix_must_be_printable_ascii() -> None:
    assert check_subject_prefix(" [SPAM] ") == "[SPAM]"
    assert check_subject_prefix("") is None
    assert check_subject_prefix(None) is None
    for bad in ("[SPÄM]", "a\nb", "x" * 65):
        with pytest.raises(HeaderError):
            check_subject_prefix(bad)


_FIELD_RE = re.compile(rb"([!-9;-~]+)[ \t]*:")  # RFC 5322 field name, then optional blanks


@given(
    st.binary(max_size=40)
    | st.lists(
        st.sampled_from(
            [b"Subject", b"X-Spam", b" ", b"\t", b":", b"\x7f", b"\x80", b"a b", b"\r\n", b"", b"~"]
        ),
        max_size=6,
    ).map(b"".join)
)
def test_field_name_is_the_rfc_5322_field_name_pattern(line: bytes) -> None:
    match = _FIELD_RE.match(line)
    assert field_name(line) == (match.group(1) if match else None)


def test_field_name_examples() -> None:
    assert field_name(b"Subject: hi\n") == b"Subject"
    assert field_name(b"X-Old-Style \t: yes\n") == b"X-Old-Style"
    assert field_name(b"From someone@example.org Mon Jan  1\n") is None
    assert field_name(b": no name\n") is None
    assert field_name(b" continued: line\n") is None


# --- the fast paths agree with the line-by-line definitions -------------------------------

def _looks_like_message_by_lines(raw: bytes) -> bool:
    """The definition, line by line (what `looks_like_message` computed before its fast path)."""
    head = raw[:65536]
    lines = [line + b"\n" for line in head.split(b"\n")[:-1]]
    if head.split(b"\n")[-1]:
        lines.append(head.split(b"\n")[-1])
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    if not lines or field_name(lines[0]) is None:
        return False
    end = next((i for i, line in enumerate(lines) if line in (b"\n", b"\r\n")), len(lines))
    return not any(b"\0" in line for line in lines[:end])


_PIECES = st.sampled_from([
    b"From ", b"From x@y Mon Jan  1 00:00:00 2024\n", b"Subject: hi", b"X-Spam-Flag: YES",
    b"x-spam-status: No", b"X-Mailfilter-Score: 0.9 prefix=[SPAM]", b"Subject: [SPAM] hi",
    b"\n", b"\r\n", b"\r", b" folded", b"\t", b"\0", b"body text", b":", b"no colon", b"  ",
    b"To: a@b", b"X-Spam-Level: ***",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=14).map(b"".join))
def test_looks_like_message_fast_path_matches_its_definition(raw: bytes) -> None:
    assert looks_like_message(raw) == _looks_like_message_by_lines(raw)


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=14).map(b"".join))
def test_strip_fast_path_matches_the_field_by_field_strip(raw: bytes) -> None:
    assert strip_our_headers(raw) == _strip_by_fields(raw)
    tagged = tag_message(raw, SPAM, prefix="[SPAM]")
    assert strip_our_headers(tagged) == _strip_by_fields(tagged)


def test_looks_like_message_edges() -> None:
    assert looks_like_message(b"From x\nSubject: a\n\n\0body")  # NUL in the body is fine
    assert not looks_like_message(b"From x\nSubject: a\nX: \0\n\nbody")
    assert not looks_like_message(b"From x")
    assert not looks_like_message(b"From x\n")
    assert looks_like_message(b"Subject: a")
    assert not looks_like_message(b"\nSubject: a")
    assert looks_like_message(b"Subject: a\r\n\r\n\0")
