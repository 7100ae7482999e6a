"""`welcomelist_from`: mail from listed senders is never spam, in every path that decides."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailfilter.daemon import Daemon, Job
from mailfilter.filter import filter_with_engine
from mailfilter.headers import strip_our_headers, verdict_headers
from mailfilter.mailboxes import detect
from mailfilter.scan import scan
from mailfilter.settings import Settings, SettingsError, load_settings
from mailfilter.state import State
from mailfilter.verdict import decide, judge, threshold_of
from mailfilter.welcomelist import (
    MAX_HEADER_BYTES,
    WelcomelistError,
    check_pattern,
    from_addresses,
    welcomed_sender,
)
from tests.mailfilter import test_daemon, test_filter
from tests.mailfilter.fakes import FakeEngine
from tests.mailfilter.test_scan import KINDS, build, inventory


def test_patterns_are_addresses_or_globs_and_anything_else_is_refused() -> None:
    assert check_pattern("  Ann@Example.ORG ") == "ann@example.org"
    assert check_pattern("*@example.org") == "*@example.org"
    for bad in ("ann", "example.org", "@example.org", "ann@", "ann smith@example.org", ""):
        with pytest.raises(WelcomelistError, match="not an address or pattern"):
            check_pattern(bad)


def test_the_setting_is_read_from_the_config_file_and_a_bad_entry_is_one_line(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.toml"
    good.write_text('welcomelist_from = ["Ann@Example.org", "*@family.example"]\n')
    assert load_settings(good).welcomelist_from == ["ann@example.org", "*@family.example"]
    assert load_settings(None).welcomelist_from == []
    bad = tmp_path / "bad.toml"
    bad.write_text('welcomelist_from = ["ann@example.org", "family.example"]\n')
    with pytest.raises(SettingsError) as e:
        load_settings(bad)
    assert "\n" not in str(e.value)
    assert "welcomelist_from" in str(e.value) and "'family.example'" in str(e.value)


def test_from_addresses_reads_every_from_address_and_nothing_else() -> None:
    raw = (b'From: "Ann Lee" <Ann.Lee@Example.org>, bob@example.net\nTo: carol@example.org\n'
           b"Reply-To: dave@example.org\nSubject: hi eve@example.org\n\nFrom: frank@example.org\n")
    assert from_addresses(raw) == ["ann.lee@example.org", "bob@example.net"]
    assert from_addresses(b"Subject: no sender\n\nbody") == []
    assert from_addresses(b"From: Undisclosed recipients\n\nbody") == []
    assert from_addresses(b"") == []
    encoded = b"From: =?utf-8?q?Ann?= <ann@example.org>\r\n\r\nx"
    assert from_addresses(encoded) == ["ann@example.org"]
    assert from_addresses(bytes(range(256)) * 100) == []  # binary junk: no sender, no error


def test_only_the_start_of_a_huge_header_block_is_read() -> None:
    filler = b"X-Filler: " + b"a" * 1000 + b"\n"
    late = filler * (MAX_HEADER_BYTES // len(filler) + 1) + b"From: ann@example.org\n\nbody"
    assert from_addresses(late) == []
    assert from_addresses(b"From: ann@example.org\n" + late) == ["ann@example.org"]


def test_a_pattern_matches_whole_addresses_only() -> None:
    patterns = ["ann@example.org", "*@family.example"]
    assert welcomed_sender(b"From: ANN@example.org\n\nx", patterns) == "ann@example.org"
    assert welcomed_sender(b"From: Kid <kid@family.example>\n\nx", patterns) == "kid@family.example"
    for sender in (b"ann@example.org.evil.test", b"joann@example.org", b"kid@family.example.evil",
                   b"kid@sub.family.example"):
        assert welcomed_sender(b"From: " + sender + b"\n\nx", patterns) is None
    assert welcomed_sender(b"From: ann@example.org\n\nx", []) is None


def test_a_welcomed_verdict_is_ham_whatever_the_score_and_says_why_in_its_headers() -> None:
    verdict = decide(0.999, 0.5, "m", unsure_band=0.1, welcomed=True)
    assert verdict.label == "ham" and not verdict.is_spam and verdict.score == 0.999
    lines = verdict_headers(verdict)
    assert not any(line.startswith("X-Spam-Flag") for line in lines)
    assert "X-Spam-Status: No, score=0.9990 required=0.5000 tests=MAILFILTER,USER_IN_WELCOMELIST" \
        in lines[0]
    assert "X-Spam-Level: " in lines  # no stars: sieve rules on the level must not file it
    assert "tests=MAILFILTER version" in verdict_headers(decide(0.999, 0.5, "m"))[1]


def test_judge_uses_the_users_threshold_band_and_welcomelist() -> None:
    raw_ann, raw_bob = b"From: ann@example.org\n\nhi", b"From: bob@example.org\n\nhi"
    plain = Settings()
    assert threshold_of(plain, 0.9) == 0.9
    assert judge(raw_bob, 0.95, plain, 0.9, "m").label == "spam"
    assert judge(raw_bob, 0.85, plain, 0.9, "m").label == "ham"
    mine = Settings(threshold=0.99, unsure_band=0.02, welcomelist_from=["ann@example.org"])
    assert threshold_of(mine, 0.9) == 0.99
    assert judge(raw_bob, 0.95, mine, 0.9, "m").label == "ham"  # under the user's threshold
    assert judge(raw_bob, 0.98, mine, 0.9, "m").label == "unsure"
    welcomed = judge(raw_ann, 0.9999, mine, 0.9, "m")
    assert welcomed.label == "ham" and welcomed.welcomed and welcomed.threshold == 0.99


@pytest.mark.parametrize("kind", KINDS)
def test_scan_moves_spam_but_not_a_welcomed_senders_and_loses_nothing(
    tmp_path: Path, kind: str
) -> None:
    path = build(tmp_path, kind)  # spam: messages 0, 3 and 6, from sender{i}@example.com
    before = inventory(tmp_path)
    settings = Settings(action="move", state_path=tmp_path / "state.db",  # type: ignore[arg-type]
                        welcomelist_from=["sender3@example.com", "*@elsewhere.example"])
    state = State.open(tmp_path / "state.db")
    try:
        report = scan([detect(path)], settings, FakeEngine(), state=state)
    finally:
        state.close()
    assert (report.spam, report.welcomed, report.changed["moved"]) == (2, 1, 2)
    assert inventory(tmp_path) == before
    kept = {r.key: r for r in report.results if r.verdict == "ham" and r.score > 0.5}
    assert len(kept) == 1 and next(iter(kept.values())).outcome == "kept"
    assert report.to_dict()["welcomed"] == 1


def test_procmail_filter_tags_a_welcomed_senders_mail_as_ham() -> None:
    raw = test_filter.HAM  # From: alice@example.com
    settings = Settings(welcomelist_from=["alice@example.com"])
    result = filter_with_engine(raw, settings, test_filter.FakeEngine(0.99))  # type: ignore[arg-type]
    assert result.label == "ham" and result.score == 0.99
    assert b"X-Spam-Status: No," in result.output and b"USER_IN_WELCOMELIST" in result.output
    assert b"X-Spam-Flag" not in result.output
    assert strip_our_headers(result.output) == raw
    other = filter_with_engine(raw, Settings(), test_filter.FakeEngine(0.99))  # type: ignore[arg-type]
    assert other.label == "spam"


def test_the_daemon_socket_answers_ham_for_a_welcomed_sender(
    daemon_for: Callable[..., tuple[Daemon, test_daemon.FakeEngine]],
) -> None:
    daemon, _ = daemon_for(welcomelist_from=["sender5@example.com"])
    welcomed = daemon.check(test_daemon.message(5, True), want_message=True)
    assert welcomed.label == "ham" and welcomed.message is not None
    assert b"USER_IN_WELCOMELIST" in welcomed.message
    assert daemon.check(test_daemon.message(6, True), want_message=False).label == "spam"


daemon_for = test_daemon.daemon_for


def test_the_daemon_leaves_a_welcomed_senders_delivery_where_it_is(
    tmp_path: Path, daemon_for: Callable[..., tuple[Daemon, test_daemon.FakeEngine]],
) -> None:
    maildir = test_daemon.make_maildir(tmp_path / "Maildir")
    daemon, _ = daemon_for(action="move", mailboxes=[maildir],
                           welcomelist_from=["*@example.com"])
    kept = test_daemon.deliver(maildir, "1.host", test_daemon.message(1, True))
    daemon.process([Job("file", kept)])
    assert kept.read_bytes() == test_daemon.message(1, True)
    assert not (maildir / ".Junk").exists()
