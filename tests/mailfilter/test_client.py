"""`mailfilter-client`: light to import, asks the daemon, falls back in-process, fails open."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfilter.client import (
    ClientConfig,
    NoDaemonError,
    _argparse,
    _quick_parse,
    ask_daemon,
    check,
    load_client_config,
)
from mailfilter.filter import EX_TEMPFAIL, FilterMode, run_filter
from mailfilter.headers import strip_our_headers, tag_message
from mailfilter.protocol import Answer, socket_candidates
from mailfilter.server import MailfilterServer
from mailfilter.verdict import decide

REPO = Path(__file__).resolve().parents[2]
SPAM = (
    b"From: winner@lottery.example\nTo: me@example.org\nSubject: You won a prize\n"
    b"Message-ID: <s1@lottery.example>\n\nClaim your prize now! Cheap pills, free money.\n"
)
HAM = (
    b"From: alice@example.com\nTo: me@example.org\nSubject: minutes of the meeting\n"
    b"Message-ID: <h1@example.com>\n\nHi Bob, the notes from Tuesday are attached.\n"
)


def test_importing_the_client_loads_neither_torch_nor_typer_nor_pydantic() -> None:
    code = (
        "import mailfilter.client, sys; "
        "heavy = [m for m in ('torch', 'typer', 'pydantic', 'mailfilter.settings') "
        "if m in sys.modules]; assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_the_clients_happy_path_imports_no_slow_standard_modules() -> None:
    """Each of these costs the per-message client milliseconds (bench/latency.py); `-S` so that
    what site-packages' .pth files import does not hide them."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import mailfilter.client as c; "
        "c.parse_args(['--socket', '/nowhere.sock', '--exit-code', '-v']); "
        "slow = [m for m in ('logging', 'dataclasses', 'typing', 'inspect', 'socketserver', "
        "'threading', 'email', 'tomllib', 'pathlib', 'shutil', 'socket', 'selectors', "
        "'argparse', 're', 'gettext', 'enum') "
        "if m in sys.modules]; "
        "assert not slow, slow"
    )
    subprocess.run([sys.executable, "-S", "-c", code, str(REPO)], check=True, timeout=60)


def test_the_installed_script_imports_no_re(tmp_path: Path, server: MailfilterServer) -> None:
    """bin/mailfilter-client is what `pip install` puts on PATH; pip's entry-point wrapper would
    import `re` (and argparse would pull in `re` and `gettext`) on every piped message."""
    env = {"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable, "-S", "-X", "importtime", str(REPO / "bin" / "mailfilter-client"),
            "--exit-code", f"--socket={tmp_path / 'run' / 'mf.sock'}",
        ],
        input=HAM, capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]  # --exit-code: ham
    assert strip_our_headers(done.stdout) == HAM != done.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "mailfilter.client" in imported
    assert not imported & {"re", "argparse", "gettext", "logging", "torch"}, imported


_WORDS = [
    "--strict",
    "--exit-code",
    "--passthrough",
    "--no-passthrough",
    "--fallback",
    "--no-fallback",
    "-v",
    "--verbose",
    "-vv",
    "--socket",
    "--socket=/s",
    "--socket=",
    "--config",
    "-c",
    "--config=a.toml",
    "-c=b",
    "--timeout",
    "--timeout=2.5",
    "--timeout=x",
    "--sock",
    "--exit",
    "--",
    "/path",
    "3",
    "-5",
    "",
    "x=y",
    "-h",
]


@given(st.lists(st.sampled_from(_WORDS), max_size=6))
def test_the_fast_argument_path_agrees_with_argparse(argv: list[str]) -> None:
    """Whatever _quick_parse accepts, argparse parses the same way; the rest goes to argparse."""
    quick = _quick_parse(argv)
    if quick is None:
        return
    assert quick.as_dict() == _argparse(argv).as_dict()


def test_the_fast_argument_path_takes_what_recipes_use() -> None:
    for argv in (
        [],
        ["--exit-code"],
        ["--socket", "/run/mf.sock", "--strict"],
        ["-c", "x.toml", "-v"],
        ["--timeout=5", "--no-fallback", "--no-passthrough", "--exit-code"],
    ):
        quick = _quick_parse(argv)
        assert quick is not None, argv
        assert quick.as_dict() == _argparse(argv).as_dict()


# --- against an in-process server with a fake model -------------------------------------------


def fake_check(raw: bytes, want_message: bool) -> Answer:
    if b"explode" in raw:
        raise RuntimeError("model exploded")
    verdict = decide(0.9 if b"prize" in raw else 0.1, 0.5, "fake00model")
    body = tag_message(raw, verdict) if want_message else None
    return Answer("OK", verdict.score, verdict.label, 0.5, "fake00model", body)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MailfilterServer]:
    srv = MailfilterServer(tmp_path / "run" / "mf.sock", fake_check, lambda: "fake", lambda: 4096)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
    assert not srv.path.exists()


def filter_through(
    raw: bytes, config: ClientConfig, mode: FilterMode, fallback: bool = False
) -> tuple[int, bytes]:
    out = io.BytesIO()
    rc = run_filter(
        io.BytesIO(raw), out, lambda r: check(r, config, None, mode.passthrough, fallback), mode
    )
    return rc, out.getvalue()


def test_the_socket_is_private_and_answers_with_the_tagged_message(
    server: MailfilterServer,
) -> None:
    assert server.path.stat().st_mode & 0o777 == 0o600
    config = ClientConfig(socket_path=server.path)
    rc, out = filter_through(SPAM, config, FilterMode(exit_code=True))
    assert rc == 0 and b"X-Spam-Flag: YES" in out and strip_our_headers(out) == SPAM
    rc, out = filter_through(HAM, config, FilterMode(exit_code=True, passthrough=False))
    assert (rc, out) == (1, b"")


def test_daemon_errors_and_skips_fail_open(server: MailfilterServer) -> None:
    config = ClientConfig(socket_path=server.path)
    boom = HAM + b"explode\n"
    assert filter_through(boom, config, FilterMode()) == (0, boom)
    assert filter_through(boom, config, FilterMode(strict=True)) == (EX_TEMPFAIL, boom)
    big = HAM + b"x" * 5000  # over the server's max_size: SKIP too-large, passed unchanged
    assert filter_through(big, config, FilterMode(exit_code=True)) == (2, big)
    assert ask_daemon(big, [server.path], 5.0).reason == "too-large"


def test_a_truncated_answer_never_reaches_stdout(tmp_path: Path) -> None:
    path = tmp_path / "liar.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def lie() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"OK 0.900000 spam 0.500000 m 9999\nFrom: half a mess")

    thread = threading.Thread(target=lie)
    thread.start()
    try:
        config = ClientConfig(socket_path=path, timeout=5.0)
        assert filter_through(SPAM, config, FilterMode(exit_code=True)) == (3, SPAM)
    finally:
        thread.join()
        listener.close()


def test_without_a_daemon_and_without_fallback_the_message_passes(tmp_path: Path) -> None:
    config = ClientConfig(socket_path=tmp_path / "nobody-home.sock")
    with pytest.raises(NoDaemonError):
        check(SPAM, config, None, True, fallback=False)
    assert filter_through(SPAM, config, FilterMode()) == (0, SPAM)


def test_client_settings_come_from_flags_then_env_then_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("MAILFILTER_SOCKET_PATH", "MAILFILTER_STRICT", "MAILFILTER_CLIENT_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "c.toml"
    config.write_text('socket_path = "/file.sock"\nstrict = true\nclient_timeout = 7\n')
    assert load_client_config(config, None, None) == ClientConfig("/file.sock", True, 7.0)
    monkeypatch.setenv("MAILFILTER_SOCKET_PATH", "/env.sock")
    monkeypatch.setenv("MAILFILTER_STRICT", "no")
    assert load_client_config(config, None, None) == ClientConfig("/env.sock", False, 7.0)
    flags = load_client_config(config, Path("/flag.sock"), 2.0)
    assert flags == ClientConfig("/flag.sock", False, 2.0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert socket_candidates(None)[0] == str(tmp_path / "run" / "mailfilter" / "mailfilter.sock")


# --- end to end with procmail: daemon, fallback, failure ---------------------------------------


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


def procmail_deliver(tmp_path: Path, raw: bytes, filter_cmd: str, env: dict[str, str]) -> Path:
    """Deliver `raw` with a .procmailrc filtering through `filter_cmd` (`cat`: as unfiltered)."""
    procmail = shutil.which("procmail")
    if procmail is None:
        pytest.skip("procmail is not installed (apt-get install procmail)")
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
        [procmail, "-p", str(rc)], input=raw, env=env, capture_output=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    (landed,) = set(maildir.rglob("new/*")) - before
    return landed


def client_script(tmp_path: Path) -> Path:
    script = tmp_path / "mailfilter-client"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m mailfilter.client "$@"\n')
    script.chmod(0o755)
    return script


def assert_delivered(tmp_path: Path, landed: Path, raw: bytes, folder: str, env: dict) -> None:
    assert landed.parent.parent.name == folder
    data = landed.read_bytes()
    assert b"X-Mailfilter-Score: " in data
    assert strip_our_headers(data) == procmail_deliver(tmp_path, raw, "cat", env).read_bytes()


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if ask_daemon(b"", [path], 5.0).status in ("OK", "SKIP"):
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError("daemon did not come up")


@pytest.mark.slow
def test_procmail_through_the_running_daemon(tmp_path: Path, tiny_checkpoint: Path) -> None:
    from mailfilter.engine import Engine
    from mailfilter.message import to_text

    spam_score, ham_score = Engine.load(tiny_checkpoint).score_texts([to_text(SPAM), to_text(HAM)])
    assert spam_score != ham_score, "pick messages the tiny model tells apart"
    spam, ham = (SPAM, HAM) if spam_score > ham_score else (HAM, SPAM)
    threshold = (spam_score + ham_score) / 2
    sock = tmp_path / "run" / "mailfilter" / "mailfilter.sock"
    env = child_env(tmp_path, MAILFILTER_STATE_PATH=str(tmp_path / "state.db"))
    cmd = [sys.executable, "-c", "from mailfilter.cli import main; main()", "daemon"]
    args = ["--checkpoint", str(tiny_checkpoint), "--threshold", repr(threshold), "--no-watch"]
    proc = subprocess.Popen([*cmd, *args], env=env, stderr=subprocess.PIPE)
    try:
        wait_for_socket(sock, proc)
        client = client_script(tmp_path)
        no_fallback = f"{client} --no-fallback"  # a daemon answer, or the test fails
        assert_delivered(tmp_path, procmail_deliver(tmp_path, spam, no_fallback, env), spam,
                         ".Junk", env)  # fmt: skip
        assert_delivered(tmp_path, procmail_deliver(tmp_path, ham, no_fallback, env), ham,
                         "Maildir", env)  # fmt: skip
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    assert not sock.exists()


@pytest.mark.slow
def test_procmail_without_a_daemon_scores_in_process(tmp_path: Path, tiny_checkpoint: Path) -> None:
    client = client_script(tmp_path)
    for raw, threshold, folder in ((SPAM, "0.0", ".Junk"), (HAM, "1.0", "Maildir")):
        env = child_env(
            tmp_path, MAILFILTER_CHECKPOINT=str(tiny_checkpoint), MAILFILTER_THRESHOLD=threshold
        )
        assert_delivered(tmp_path, procmail_deliver(tmp_path, raw, str(client), env), raw,
                         folder, env)  # fmt: skip


@pytest.mark.slow
def test_procmail_delivers_unchanged_when_the_client_fails(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    env = child_env(tmp_path, MAILFILTER_CHECKPOINT=str(corrupt))
    landed = procmail_deliver(tmp_path, SPAM, str(client_script(tmp_path)), env)
    assert landed.parent.parent.name == "Maildir"
    assert landed.read_bytes() == procmail_deliver(tmp_path, SPAM, "cat", env).read_bytes()
    assert b"passed on unchanged" in (tmp_path / "procmail.log").read_bytes()
