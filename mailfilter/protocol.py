"""The daemon's wire protocol and where its socket lives; `mailfilter.server` serves it.

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

The thin client imports this module on every piped message, so it imports only `os` and `pwd`
(paths are strings): no torch, typer or pydantic, and not even `pathlib`, `dataclasses`,
`logging` or `typing`, whose imports would cost more than the socket round trip itself
(see bench/latency.py).
"""

from __future__ import annotations

import os
import pwd

TYPE_CHECKING = False  # typing is not imported at run time (see above); mypy reads this as True
if TYPE_CHECKING:
    from io import BufferedIOBase
    from typing import IO

SOCKET_NAME = "mailfilter.sock"
MAX_LINE = 512


class ProtocolError(Exception):
    """A request or response that does not follow the protocol."""


class Answer:
    """The daemon's answer to one CHECK or SCORE request (a plain class: see the module doc)."""

    __slots__ = ("label", "message", "model_id", "reason", "score", "status", "threshold")

    def __init__(
        self,
        status: str,  # OK, SKIP or ERR
        score: float | None = None,
        label: str | None = None,
        threshold: float | None = None,
        model_id: str | None = None,
        message: bytes | None = None,  # the tagged message (OK to CHECK only)
        reason: str | None = None,  # SKIP/ERR detail
    ) -> None:
        self.status, self.score, self.label, self.threshold = status, score, label, threshold
        self.model_id, self.message, self.reason = model_id, message, reason

    def __repr__(self) -> str:
        return f"Answer({self.status!r}, {self.score!r}, {self.label!r}, reason={self.reason!r})"


def _env_dir(var: str, fallback: str) -> str:
    # settings.xdg_dir's rule, as a string: the client imports neither settings nor pathlib.
    return os.environ.get(var) or os.path.join(os.path.expanduser("~"), fallback)


def default_socket_path() -> str:
    """Where the daemon puts its socket when settings.socket_path is unset."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "mailfilter", SOCKET_NAME)
    user_run = f"/run/user/{os.getuid()}"
    if os.path.isdir(user_run):
        return os.path.join(user_run, "mailfilter", SOCKET_NAME)
    return os.path.join(_env_dir("XDG_STATE_HOME", ".local/state"), "mailfilter", SOCKET_NAME)


def socket_candidates(explicit: str | os.PathLike[str] | None = None) -> list[str]:
    """Sockets the client tries, in order: the configured one, else the default places."""
    if explicit is not None:
        return [os.path.expanduser(os.fspath(explicit))]
    paths = [default_socket_path()]
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
        paths.append(os.path.join("/run/mailfilter", user, SOCKET_NAME))
    except KeyError:  # a uid without a passwd entry (containers)
        pass
    paths.append(os.path.join(_env_dir("XDG_STATE_HOME", ".local/state"), "mailfilter",
                              SOCKET_NAME))
    return list(dict.fromkeys(paths))


# --- the wire format ---------------------------------------------------------------------


def encode_request(raw: bytes, want_message: bool = True) -> bytes:
    """The request line and message for CHECK (or SCORE when the message is not wanted back)."""
    verb = b"CHECK" if want_message else b"SCORE"
    return verb + b" %d\n" % len(raw) + raw


def read_exact(f: IO[bytes] | BufferedIOBase, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ProtocolError(f"connection closed after {len(data)} of {n} bytes")
    return data


def read_line(f: IO[bytes] | BufferedIOBase) -> str:
    line = f.readline(MAX_LINE)
    if not line.endswith(b"\n"):
        raise ProtocolError("no complete header line" if line else "connection closed")
    try:
        return line[:-1].decode("ascii")
    except UnicodeDecodeError as e:
        raise ProtocolError("header line is not ASCII") from e


def read_answer(f: IO[bytes] | BufferedIOBase) -> Answer:
    """Parse one answer; every byte of a returned message has been read, or ProtocolError."""
    line = read_line(f)
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
    message = read_exact(f, nbytes) if nbytes else None
    return Answer("OK", score, parts[1], threshold, parts[3], message)


def format_ok(score: float, label: str, threshold: float, model_id: str, body: bytes) -> bytes:
    """An OK answer line and its message."""
    line = f"OK {score:.6f} {label} {threshold:.6f} {model_id} {len(body)}\n"
    return line.encode("ascii") + body


def one_line(text: str) -> str:
    """Text made safe for a protocol line: no line breaks, printable ASCII, bounded."""
    flat = " ".join(text.split())
    return flat.encode("ascii", "replace").decode("ascii")[:300]
