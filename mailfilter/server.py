"""The daemon's Unix socket server: one request per connection.

The protocol and the socket's location are in `mailfilter.protocol`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import socketserver
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from mailfilter.protocol import (
    Answer,
    ProtocolError,
    format_ok,
    one_line,
    read_exact,
    read_line,
)

log = logging.getLogger(__name__)

IO_TIMEOUT = 60.0  # seconds a connection may stall while sending its request


class ServerError(Exception):
    """The socket cannot be created (in use by a running daemon, bad directory, ...)."""


# --- the server ------------------------------------------------------------------------------

# Called with the message bytes and whether the tagged message is wanted; returns the answer.
CheckFn = Callable[[bytes, bool], Answer]


class _Handler(socketserver.StreamRequestHandler):
    """One connection: one request, one answer."""

    server: MailfilterServer
    timeout = IO_TIMEOUT

    def handle(self) -> None:
        try:
            line = read_line(self.rfile)
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
            raw = read_exact(self.rfile, nbytes)
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
