"""`mailfilter filter` (procmail `:0fw`): the whole message out, tagged, or unchanged on error."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailfilter.filter import (
    EX_TEMPFAIL,
    FilterMode,
    FilterResult,
    exit_status,
    filter_with_engine,
    run_filter,
)
from mailfilter.headers import strip_our_headers, tag_message
from mailfilter.settings import Settings
from mailfilter.verdict import decide

REPO = Path(__file__).resolve().parents[2]
SPAM = (
    b"From: winner@lottery.example\r\nTo: me@example.org\r\nSubject: You won\r\n"
    b"Message-ID: <s1@lottery.example>\r\n\r\nClaim your prize now \xe2\x82\xac\xff\r\n"
)
HAM = b"From: alice@example.com\nTo: me@example.org\nSubject: lunch\n\nNoon?"  # no final EOL


class FakeEngine:
    """score_texts returns a fixed score; `threshold`/`model_id` as the real engine has them."""

    threshold = 0.5
    model_id = "fake0000model0001"

    def __init__(self, score: float = 0.9) -> None:
        self.score = score

    def score_texts(self, texts: list[str]) -> list[float]:
        return [self.score] * len(texts)


def tagged(raw: bytes, score: float) -> bytes:
    return tag_message(raw, decide(score, 0.5, FakeEngine.model_id))


DEFAULT = FilterMode()


def run(raw: bytes, compute: object, mode: FilterMode = DEFAULT) -> tuple[int, bytes]:
    out = io.BytesIO()
    rc = run_filter(io.BytesIO(raw), out, compute, mode)  # type: ignore[arg-type]
    return rc, out.getvalue()


def fails(raw: bytes) -> FilterResult:
    raise RuntimeError("model exploded")


# --- the pipe: what goes out, and the exit status ---------------------------------------------


def test_the_message_goes_out_whole_with_our_headers() -> None:
    settings = Settings()
    for raw, score, label in ((SPAM, 0.9, "spam"), (HAM, 0.1, "ham")):
        result = filter_with_engine(raw, settings, FakeEngine(score))  # type: ignore[arg-type]
        assert result.label == label
        rc, out = run(raw, lambda r, res=result: res)
        assert rc == 0 and out == tagged(raw, score)
        assert strip_our_headers(out) == raw
        assert (b"X-Spam-Flag: YES" in out) == (label == "spam")


def test_any_error_fails_open_with_the_original_bytes() -> None:
    assert run(SPAM, fails) == (0, SPAM)
    assert run(SPAM, fails, FilterMode(strict=True)) == (EX_TEMPFAIL, SPAM)
    assert run(SPAM, lambda r: sys.exit(1)) == (0, SPAM)  # even SystemExit


def test_output_that_is_not_the_same_message_is_never_written() -> None:
    def truncating(raw: bytes) -> FilterResult:
        return FilterResult(raw[:20], "ham", 0.1)

    assert run(SPAM, truncating) == (0, SPAM)
    assert run(SPAM, truncating, FilterMode(strict=True, exit_code=True)) == (EX_TEMPFAIL, SPAM)


@pytest.mark.parametrize(("score", "expected"), [(0.9, 0), (0.1, 1), (0.52, 2), (None, 3)])
def test_exit_code_mode_is_bogofilters(score: float | None, expected: int) -> None:
    settings = Settings(unsure_band=0.05)
    engine = FakeEngine(score or 0.0)

    def compute(raw: bytes) -> FilterResult:
        if score is None:
            raise OSError("disk on fire")
        return filter_with_engine(raw, settings, engine)  # type: ignore[arg-type]

    rc, out = run(HAM, compute, FilterMode(exit_code=True))
    assert rc == expected
    assert strip_our_headers(out) == HAM  # the message is still written
    rc, out = run(HAM, compute, FilterMode(exit_code=True, passthrough=False))
    assert rc == expected and out == b""
    if score is None:
        assert run(HAM, compute, FilterMode(exit_code=True, strict=True))[0] == EX_TEMPFAIL


def test_too_large_or_not_a_message_passes_unchanged_and_unscored() -> None:
    settings = Settings(max_size=1024)
    big = HAM + b"x" * 2000
    for raw in (big, b"\x00\x01 binary garbage, no header", b""):
        result = filter_with_engine(raw, settings, FakeEngine())  # type: ignore[arg-type]
        assert result.output == raw and result.label is None and result.note
        assert exit_status(result, FilterMode()) == 0
        assert exit_status(result, FilterMode(exit_code=True)) == 2


def test_a_failed_write_exits_75_so_the_caller_keeps_its_copy() -> None:
    class BrokenPipe(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise BrokenPipeError(32, "Broken pipe")

    rc = run_filter(io.BytesIO(HAM), BrokenPipe(), lambda r: FilterResult(r), FilterMode())
    assert rc == EX_TEMPFAIL


# --- end to end: the command, and procmail ------------------------------------------------------


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAILFILTER_")}
    env.update(
        PYTHONPATH=str(REPO),
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
    )
    env.update(extra)
    return env


def test_the_command_line_loads_no_model_code_until_a_message_is_scored() -> None:
    code = (
        "import mailfilter.cli, mailfilter.filter, sys; "
        "heavy = [m for m in ('torch', 'training') if m in sys.modules]; assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_the_command_fails_open_when_the_model_cannot_load(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    cmd = [sys.executable, "-c", "from mailfilter.cli import main; main()", "filter"]
    env = child_env(tmp_path, MAILFILTER_CHECKPOINT=str(bad))
    done = subprocess.run(cmd, input=SPAM, capture_output=True, env=env, timeout=120)
    assert (done.returncode, done.stdout) == (0, SPAM)
    assert done.stderr.count(b"\n") == 1 and b"passed on unchanged" in done.stderr
    strict = subprocess.run([*cmd, "--strict"], input=SPAM, capture_output=True, env=env)
    assert (strict.returncode, strict.stdout) == (EX_TEMPFAIL, SPAM)


def needs_procmail() -> str:
    path = shutil.which("procmail")
    if path is None:
        pytest.skip("procmail is not installed (apt-get install procmail)")
    return path


def procmail_deliver(tmp_path: Path, raw: bytes, filter_cmd: str, env: dict[str, str]) -> Path:
    """Deliver `raw` with a .procmailrc that filters through `filter_cmd`; the file it landed in.

    Delivered through `cat` instead, the file holds what procmail itself makes of `raw` (it
    ends a message with an empty line): what a filtered message must equal, our headers aside.
    """
    maildir = tmp_path / "Maildir"
    for folder in (maildir, maildir / ".Junk"):
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    rc = tmp_path / ".procmailrc"
    rc.write_text(
        f"SHELL=/bin/sh\nMAILDIR={maildir}/\nDEFAULT=$MAILDIR\nLOGFILE={tmp_path}/procmail.log\n"
        f":0fw\n| {filter_cmd}\n\n:0\n* ^X-Spam-Flag: YES\n.Junk/\n"
    )
    before = set(maildir.rglob("new/*"))
    done = subprocess.run(
        [needs_procmail(), "-p", str(rc)], input=raw, env=env, capture_output=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    (landed,) = set(maildir.rglob("new/*")) - before
    return landed


def wrapper(tmp_path: Path, name: str, module_call: str) -> Path:
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{module_call}" "$@"\n')
    script.chmod(0o755)
    return script


@pytest.mark.slow
def test_procmail_files_spam_into_junk_and_ham_into_the_inbox_whole(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    needs_procmail()
    cmd = wrapper(tmp_path, "mf", "from mailfilter.cli import main; main()")
    for raw, threshold, folder in ((SPAM, "0.0", ".Junk"), (HAM, "1.0", "Maildir")):
        env = child_env(
            tmp_path, MAILFILTER_CHECKPOINT=str(tiny_checkpoint), MAILFILTER_THRESHOLD=threshold
        )
        landed = procmail_deliver(tmp_path, raw, f"{cmd} filter", env)
        assert landed.parent.parent.name == folder
        data = landed.read_bytes()
        assert b"X-Mailfilter-Score: " in data
        assert strip_our_headers(data) == procmail_deliver(tmp_path, raw, "cat", env).read_bytes()


@pytest.mark.slow
def test_procmail_delivers_unchanged_when_mailfilter_fails(tmp_path: Path) -> None:
    needs_procmail()
    cmd = wrapper(tmp_path, "mf", "from mailfilter.cli import main; main()")
    env = child_env(tmp_path, MAILFILTER_CHECKPOINT=str(tmp_path / "missing.safetensors"))
    landed = procmail_deliver(tmp_path, SPAM, f"{cmd} filter", env)
    unfiltered = procmail_deliver(tmp_path, SPAM, "cat", env)  # procmail adds a final newline
    assert landed.parent.parent.name == "Maildir"
    assert landed.read_bytes() == unfiltered.read_bytes()
    assert b"passed on unchanged" in (tmp_path / "procmail.log").read_bytes()
