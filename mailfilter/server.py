"""The daemon's Unix socket: where it lives, the request/response protocol, and the server.

Protocol (version 1), one request per connection, like spamc/spamd but smaller:

    client → daemon   CHECK <nbytes>\\n<nbytes of the message>
                      SCORE <nbytes>\\n<nbytes of the message>   (verdict only, no message back)
                      PING\\n
    daemon → client   OK <score> <label> <threshold> <model_id> <nbytes>\\n<tagged message>
                      SKIP <reason>\\n    the message was not scored (too-large, not-a-message);
                                         the client passes its own copy on unchanged
                      ERR <one line>\\n   something failed; the client fails open
                      PONG <model_id>\\n

`<score>` and `<threshold>` are decimal p(spam) values, `<label>` is spam, ham or unsure. A
SCORE answer has `<nbytes>` 0. The client writes nothing until it has read all `<nbytes>` of the
answer, so a daemon dying mid-answer can never truncate a message.

The socket is `settings.socket_path`, else `$XDG_RUNTIME_DIR/mailfilter/mailfilter.sock`, else
`/run/user/<uid>/mailfilter/mailfilter.sock` when that directory exists, else
`$XDG_STATE_HOME/mailfilter/mailfilter.sock`; it is created with mode 0600 in a 0700 directory.
The client also looks in `/run/mailfilter/<user>/` (the system unit's RuntimeDirectory).

This module is imported by the thin client: it must not import torch, typer or pydantic.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pwd
import socket
import socketserver
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

SOCKET_NAME = "mailfilter.sock"
MAX_LINE = 512
IO_TIMEOUT = 60.0  # seconds a connection may stall while sending its request


class ProtocolError(Exception):
    """A request or response that does not follow the protocol."""


class ServerError(Exception):
    """The socket cannot be created (in use by a running daemon, bad directory, ...)."""


@dataclass(frozen=True)
class Answer:
    """The daemon's answer to one CHECK or SCORE request."""

    status: str  # OK, SKIP or ERR
    score: float | None = None
    label: str | None = None
    threshold: float | None = None
    model_id: str | None = None
    message: bytes | None = None  # the tagged message (OK to CHECK only)
    reason: str | None = None  # SKIP/ERR detail


def _env_dir(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_socket_path() -> Path:
    """Where the daemon puts its socket when settings.socket_path is unset."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "mailfilter" / SOCKET_NAME
    user_run = Path(f"/run/user/{os.getuid()}")
    if user_run.is_dir():
        return user_run / "mailfilter" / SOCKET_NAME
    return _env_dir("XDG_STATE_HOME", ".local/state") / "mailfilter" / SOCKET_NAME


def socket_candidates(explicit: Path | None = None) -> list[Path]:
    """Sockets the client tries, in order: the configured one, else the default places."""
    if explicit is not None:
        return [explicit.expanduser()]
    paths = [default_socket_path()]
    with contextlib.suppress(KeyError):
        user = pwd.getpwuid(os.getuid()).pw_name
        paths.append(Path("/run/mailfilter") / user / SOCKET_NAME)
    paths.append(_env_dir("XDG_STATE_HOME", ".local/state") / "mailfilter" / SOCKET_NAME)
    return list(dict.fromkeys(paths))


# --- the wire format ---------------------------------------------------------------------


def encode_request(raw: bytes, want_message: bool = True) -> bytes:
    """The request line and message for CHECK (or SCORE when the message is not wanted back)."""
    verb = b"CHECK" if want_message else b"SCORE"
    return verb + b" %d\n" % len(raw) + raw


def _read_exact(f: IO[bytes] | BufferedIOBase, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ProtocolError(f"connection closed after {len(data)} of {n} bytes")
    return data


def _read_line(f: IO[bytes] | BufferedIOBase) -> str:
    line = f.readline(MAX_LINE)
    if not line.endswith(b"\n"):
        raise ProtocolError("no complete header line" if line else "connection closed")
    try:
        return line[:-1].decode("ascii")
    except UnicodeDecodeError as e:
        raise ProtocolError("header line is not ASCII") from e


def read_answer(f: IO[bytes] | BufferedIOBase) -> Answer:
    """Parse one answer; every byte of a returned message has been read, or ProtocolError."""
    line = _read_line(f)
    status, _, rest = line.partition(" ")
    if status in ("SKIP", "ERR"):
        return Answer(status, reason=rest)
    if status != "OK":
        raise ProtocolError(f"unexpected answer {line[:80]!r}")
    parts = rest.split(" ")
    if len(parts) != 5 or parts[1] not in ("spam", "ham", "unsure"):
        raise ProtocolError(f"malformed OK line {line[:80]!r}")
    try:
        score, threshold, nbytes = float(parts[0]), float(parts[2]), int(parts[4])
    except ValueError as e:
        raise ProtocolError(f"malformed OK line {line[:80]!r}") from e
    if nbytes < 0:
        raise ProtocolError("negative length")
    message = _read_exact(f, nbytes) if nbytes else None
    return Answer("OK", score, parts[1], threshold, parts[3], message)


def format_ok(score: float, label: str, threshold: float, model_id: str, body: bytes) -> bytes:
    """An OK answer line and its message."""
    line = f"OK {score:.6f} {label} {threshold:.6f} {model_id} {len(body)}\n"
    return line.encode("ascii") + body


def one_line(text: str) -> str:
    """Text made safe for a protocol line: no line breaks, printable ASCII, bounded."""
    flat = " ".join(text.split())
    return flat.encode("ascii", "replace").decode("ascii")[:300]


# --- the server ------------------------------------------------------------------------------

# Called with the message bytes and whether the tagged message is wanted; returns the answer.
CheckFn = Callable[[bytes, bool], Answer]


class _Handler(socketserver.StreamRequestHandler):
    """One connection: one request, one answer."""

    server: MailfilterServer
    timeout = IO_TIMEOUT

    def handle(self) -> None:
        try:
            line = _read_line(self.rfile)
        except (ProtocolError, OSError) as e:
            self._send(f"ERR bad request: {one_line(str(e))}\n".encode())
            return
        verb, _, arg = line.partition(" ")
        if verb == "PING":
            self._send(f"PONG {self.server.model_id()}\n".encode())
            return
        if verb not in ("CHECK", "SCORE") or not arg.isdigit():
            self._send(f"ERR bad request {one_line(line[:60])!r}\n".encode())
            return
        nbytes = int(arg)
        if nbytes > self.server.max_size():
            self._drain(nbytes)
            self._send(b"SKIP too-large\n")
            return
        try:
            raw = _read_exact(self.rfile, nbytes)
        except (ProtocolError, OSError) as e:
            log.warning("socket request dropped: %s", e)
            return
        try:
            answer = self.server.check(raw, verb == "CHECK")
        except Exception as e:  # never take the daemon down for one message
            log.error("cannot score a socket request: %s: %s", type(e).__name__, e)
            answer = Answer("ERR", reason=f"{type(e).__name__}: {e}")
        self._send(_encode_answer(answer))

    def _drain(self, nbytes: int) -> None:
        left = nbytes
        with contextlib.suppress(OSError):
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    return
                left -= len(chunk)

    def _send(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as e:
            log.info("client went away before its answer: %s", e)


def _encode_answer(answer: Answer) -> bytes:
    if answer.status == "OK":
        assert answer.score is not None and answer.threshold is not None
        return format_ok(
            answer.score,
            answer.label or "unsure",
            answer.threshold,
            answer.model_id or "-",
            answer.message or b"",
        )
    return f"{answer.status} {one_line(answer.reason or '')}\n".encode()


class MailfilterServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A threaded Unix stream server; `serve_forever` runs in its own thread."""

    daemon_threads = False  # server_close() joins the request threads
    block_on_close = True
    allow_reuse_address = False

    def __init__(
        self,
        path: Path,
        check: CheckFn,
        model_id: Callable[[], str],
        max_size: Callable[[], int],
    ) -> None:
        self.path = path
        self.check = check
        self.model_id = model_id
        self.max_size = max_size
        self._thread: threading.Thread | None = None
        prepare_socket_path(path)
        old = os.umask(0o177)  # the socket is born 0600: no window where others may connect
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="mailfilter-socket"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, finish the requests in hand, join every thread, remove the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)


def prepare_socket_path(path: Path) -> None:
    """Create the socket's directory (0700) and remove a stale socket; ServerError if in use."""
    if len(os.fsencode(path)) >= 108:
        raise ServerError(f"socket path too long for a Unix socket (108 bytes max): {path}")
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, mode=0o700)
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ServerError(f"cannot create the socket directory {path.parent}: {e}") from e
    if not stat.S_ISSOCK(st.st_mode):
        raise ServerError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError as e:
        if e.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise ServerError(f"{path}: cannot tell whether a daemon is using it: {e}") from e
        log.info("removing stale socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    finally:
        probe.close()
    raise ServerError(f"another mailfilter daemon is already serving {path}")
