"""Scoring a large scan in forked worker processes: the same scores, in order, whatever happens
to the workers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import mailfilter.engine as engine_module
import mailfilter.workers as workers
from mailfilter.engine import Engine

REPO = Path(__file__).resolve().parents[2]


def messages(n: int) -> list[bytes]:
    """Varied synthetic mail, with some that are not mail at all."""
    out = []
    for i in range(n):
        if i % 50 == 7:
            out.append(bytes(range(256)) * (i % 5 + 1))  # binary garbage
        elif i % 50 == 8:
            out.append(b"")
        elif i == 9:  # bigger than the part of a message `to_text` reads
            out.append(b"Subject: big\n\n" + b"lorem ipsum dolor\n" * 200_000)
        else:
            words = " ".join(f"word{j * i % 97}" for j in range(i % 40 + 1))
            out.append(f"From: a{i}@example.com\nSubject: note {i}\n\n{words}\n".encode())
    return out


def scores(engine: Engine, raws: list[bytes]) -> list[float | None]:
    got = list(engine.score_messages(list(enumerate(raws)), lambda item: item[1], chunk_size=16))
    assert [s.item[0] for s in got] == list(range(len(raws)))  # every message once, in order
    return [s.score for s in got]


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the scans that went to worker processes."""
    calls: list[int] = []
    real = workers.score_in_workers

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(engine_module, "score_in_workers", counting)
    return calls


def test_workers_score_as_one_process_does(tiny_checkpoint: Path, used: list[int]) -> None:
    raws = messages(300)
    alone = scores(Engine.load(tiny_checkpoint, device="cpu", batch_size=8, workers=1), raws)
    assert not used
    pooled = scores(Engine.load(tiny_checkpoint, device="cpu", batch_size=8, workers=2), raws)
    assert used == [1]
    assert None not in pooled
    assert pooled == pytest.approx(alone, abs=1e-6)


def test_a_small_scan_stays_in_this_process(tiny_checkpoint: Path, used: list[int]) -> None:
    engine = Engine.load(tiny_checkpoint, device="cpu", batch_size=8, workers=2)
    assert len(scores(engine, messages(engine.pool_min - 1))) == engine.pool_min - 1
    assert not used


def test_dead_workers_lose_no_message(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    raws = messages(200)
    engine = Engine.load(tiny_checkpoint, device="cpu", batch_size=8, workers=2)
    expected = scores(Engine.load(tiny_checkpoint, device="cpu", batch_size=8, workers=1), raws)
    parent, real = os.getpid(), Engine.score_ids

    def dies_in_a_worker(self: Engine, seqs: list[list[int]]) -> list[float]:
        if os.getpid() != parent:
            os._exit(3)  # as if the OOM killer took it
        return real(self, seqs)

    monkeypatch.setattr(Engine, "score_ids", dies_in_a_worker)
    with caplog.at_level(logging.WARNING, logger="mailfilter.workers"):
        got = scores(engine, raws)
    assert got == pytest.approx(expected, abs=1e-6)
    assert "scoring workers failed" in caplog.text


DRIVER = """
import itertools, sys
from pathlib import Path
from mailfilter.engine import Engine
engine = Engine.load(Path(sys.argv[1]), device="cpu", batch_size=8, workers=2)
mail = (b"Subject: %d\\n\\nbody %d\\n" % (i, i) for i in itertools.count())
for n, s in enumerate(engine.score_messages(mail, lambda raw: raw, chunk_size=16)):
    if n == 100:
        print("scoring", flush=True)
"""


def _children(pid: int) -> set[int]:
    from bench.scan import process_parents

    return {child for child, parent in process_parents().items() if parent == pid}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_scan(tiny_checkpoint: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tiny_checkpoint)], cwd=REPO, stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "scoring\n"
        children = _children(proc.pid)
        assert len(children) >= 2  # the two workers (and the pool's helper, if any)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{c}").exists() for c in children):
        time.sleep(0.05)
    alive = [c for c in children if Path(f"/proc/{c}/stat").exists()
             and Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert not alive, f"workers outlived the killed scan: {alive}"


FORK_AFTER_THREADS = """
import sys, torch
from pathlib import Path
from mailfilter.engine import Engine
torch.set_num_threads(2)
mail = [b"Subject: %d\\n\\nbody %d\\n" % (i, i) for i in range(300)]
engine = Engine.load(Path(sys.argv[1]), device="cpu", threads=2, batch_size=8, workers=1)
here = [s.score for s in engine.score_messages(mail, lambda raw: raw)]  # OpenMP pool in use
engine.workers = 2
there = [s.score for s in engine.score_messages(mail, lambda raw: raw)]
assert max(abs(a - b) for a, b in zip(here, there)) < 1e-5
print("ok")
"""


def test_workers_fork_safely_after_the_model_ran_on_two_threads(tiny_checkpoint: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORK_AFTER_THREADS, str(tiny_checkpoint)], cwd=REPO,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr[-2000:]


def test_auto_workers_follow_cores_and_threads() -> None:
    assert workers.auto_workers(1) == 1
    assert 1 <= workers.auto_workers(None) <= workers.MAX_AUTO_WORKERS


@pytest.mark.parametrize("action", ["tag", "move"])
def test_a_scan_through_workers_keeps_every_message(
    tmp_path: Path, tiny_checkpoint: Path, used: list[int], action: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`mailfilter scan` with workers, every message spam (threshold 0): each one is still
    there exactly once, byte for byte apart from our headers, with its flags."""
    import mailbox as mb

    from typer.testing import CliRunner

    from mailfilter.cli import app
    from mailfilter.headers import strip_our_headers

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    md = mb.Maildir(tmp_path / "Maildir")
    originals = []
    for i, raw in enumerate(messages(150)):
        if not raw.startswith(b"From:") and not raw.startswith(b"Subject:"):
            continue  # garbage is skipped, not scored; test_scan covers it
        msg = mb.MaildirMessage(raw)
        msg.set_subdir("cur")
        msg.set_flags("S" if i % 2 else "RS")
        md.add(msg)
        originals.append((raw, msg.get_flags()))
    args = ["scan", str(tmp_path / "Maildir"), "--checkpoint", str(tiny_checkpoint),
            "--threshold", "0", "--action", action, "--batch-size", "4", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert used == [1]
    report = json.loads(result.stdout)
    assert report["scanned"] == len(originals) and report["errors"] == 0
    found, tagged = [], 0
    junk = mb.Maildir(tmp_path / "Maildir" / ".Junk", create=True)
    for box in (md, junk):
        for key in box.iterkeys():
            data = box.get_bytes(key)
            tagged += b"\nX-Spam-Flag: YES" in data
            found.append((strip_our_headers(data), box.get_message(key).get_flags()))
    assert sorted(found) == sorted(originals)
    if action == "move":
        assert len(junk) == len(originals) and len(md) == 0
    else:  # all but the one too large to rewrite
        assert tagged == len(originals) - 1 and report["not_applied"] == {"too large to tag": 1}


def test_workers_use_the_reader_they_are_given(tiny_checkpoint: Path, used: list[int]) -> None:
    raws = [b"Subject: %d\n\nsome words %d\n" % (i, i) for i in range(200)]

    def read(raw: bytes) -> str:  # a corpus reader's own conversion, as the peers bench has
        return raw.decode().upper()

    def run(workers: int) -> list[float | None]:
        engine = Engine.load(tiny_checkpoint, device="cpu", batch_size=8, workers=workers)
        return [s.score for s in engine.score_messages(raws, lambda r: r, 16, read=read)]

    alone = run(1)
    assert run(2) == pytest.approx(alone, abs=1e-6) and used == [1]
    engine = Engine.load(tiny_checkpoint, device="cpu", batch_size=8, workers=1)
    assert alone == pytest.approx(engine.score_texts([read(r) for r in raws]), abs=1e-6)


def test_default_batch_is_small_on_the_cpu(tiny_checkpoint: Path) -> None:
    from mailfilter.engine import CPU_BATCH

    engine = Engine.load(tiny_checkpoint, device="cpu")
    assert engine.batch_size == CPU_BATCH and engine.pool_min >= 4 * CPU_BATCH
    assert Engine.load(tiny_checkpoint, device="cpu", batch_size=64).batch_size == 64
