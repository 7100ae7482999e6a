"""`mailfilter-client`: the thin procmail filter that asks the running daemon, like spamc.

    :0fw
    | mailfilter-client

It reads the message from stdin, sends it to the daemon's socket (see `mailfilter.protocol` for
the protocol) and writes the tagged message to stdout. A piped message costs a socket round
trip, not a model load: this module imports neither torch, typer nor pydantic. When no daemon
answers (no socket, connection refused) it scores the message itself, importing the engine
only then (`--no-fallback` turns that off). It fails open exactly like `mailfilter filter`
(see `mailfilter.filter`): same `--strict`, `--exit-code` and `--no-passthrough`.

Its few settings come from flags, then `MAILFILTER_SOCKET_PATH`, `MAILFILTER_STRICT`,
`MAILFILTER_CLIENT_TIMEOUT`, then the config file's `socket_path`, `strict`, `client_timeout`
(read with tomllib, not the full settings); the in-process fallback loads the full settings.
"""

from __future__ import annotations

import _socket  # the C module: `socket` (with `selectors`) costs ~5 ms a message to import
import io
import os
import sys

from mailfilter import lazylog
from mailfilter.filter import FilterMode, FilterResult, filter_in_process, run_filter
from mailfilter.protocol import (
    Answer,
    ProtocolError,
    encode_request,
    read_answer,
    socket_candidates,
)

TYPE_CHECKING = False  # typing, dataclasses and logging are not imported on the happy path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    StrPath = str | os.PathLike[str]

log = lazylog.Logger("mailfilter.client")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class NoDaemonError(Exception):
    """No daemon is listening on any of the socket paths."""


class DaemonError(Exception):
    """The daemon was reached but its answer was incomplete or malformed."""


class ClientConfig:
    """What the client reads itself: where the socket is, strictness, how long to wait."""

    __slots__ = ("socket_path", "strict", "timeout")

    def __init__(
        self, socket_path: str | None = None, strict: bool = False, timeout: float = 30.0
    ) -> None:
        self.socket_path, self.strict, self.timeout = socket_path, strict, timeout

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClientConfig) and (
            (self.socket_path, self.strict, self.timeout)
            == (other.socket_path, other.strict, other.timeout)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass with eq

    def __repr__(self) -> str:
        return f"ClientConfig({self.socket_path!r}, {self.strict!r}, {self.timeout!r})"


def _config_file(explicit: StrPath | None) -> StrPath | None:
    if explicit is not None:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    candidate = os.path.join(base, "mailfilter", "config.toml")
    return candidate if os.path.isfile(candidate) else None


def _bool(value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"{key}: not a boolean: {value!r}")


def load_client_config(
    config_path: StrPath | None, socket_flag: StrPath | None, timeout_flag: float | None
) -> ClientConfig:
    """flags > MAILFILTER_* env > config file > defaults, for the client's own three keys."""
    values: dict[str, Any] = {}
    path = _config_file(config_path)
    if path is not None:
        if sys.version_info >= (3, 11):  # imported here: most runs have no file to parse
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        with open(path, "rb") as f:
            data = tomllib.load(f)
        for key in ("socket_path", "strict", "client_timeout"):
            if key in data:
                values[key] = data[key]
    for key in ("socket_path", "strict", "client_timeout"):
        env = os.environ.get(f"MAILFILTER_{key.upper()}")
        if env is not None:
            values[key] = env
    if socket_flag is not None:
        values["socket_path"] = socket_flag
    if timeout_flag is not None:
        values["client_timeout"] = timeout_flag
    sock = values.get("socket_path")
    timeout = float(values.get("client_timeout", 30.0))
    if not timeout > 0:
        raise ValueError(f"client_timeout must be positive: {timeout}")
    return ClientConfig(
        socket_path=os.path.expanduser(os.fspath(sock)) if sock else None,
        strict=_bool(values.get("strict", False), "strict"),
        timeout=timeout,
    )


class _SocketReader(io.RawIOBase):
    """A readable raw stream over a connected socket (what `socket.makefile("rb")` gives)."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.sock.recv_into(buffer)


def ask_daemon(
    raw: bytes, paths: Sequence[StrPath], timeout: float, want_message: bool = True
) -> Answer:
    """Send one message to the first daemon that accepts; NoDaemonError when none does."""
    for path in paths:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            try:
                sock.connect(str(path))
            except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
                continue
            except PermissionError:
                log.warning("%s: not allowed to connect (another user's daemon?)", path)
                continue
            try:
                sock.sendall(encode_request(raw, want_message))
                with io.BufferedReader(_SocketReader(sock)) as f:
                    return read_answer(f)
            except (OSError, ProtocolError) as e:
                raise DaemonError(f"daemon at {path}: {e}") from e
        finally:
            sock.close()
    raise NoDaemonError("no mailfilter daemon is listening (" + ", ".join(map(str, paths)) + ")")


def check(
    raw: bytes,
    config: ClientConfig,
    config_path: StrPath | None,
    want_message: bool,
    fallback: bool,
) -> FilterResult:
    """The daemon's verdict on `raw`, or the in-process one when no daemon is running."""
    try:
        paths = socket_candidates(config.socket_path)
        answer = ask_daemon(raw, paths, config.timeout, want_message)
    except NoDaemonError:
        if not fallback:
            raise
        log.info("no daemon running; scoring in this process")
        from pathlib import Path

        return filter_in_process(raw, Path(config_path) if config_path is not None else None)
    if answer.status == "OK":
        output = answer.message if answer.message is not None else raw
        return FilterResult(output, answer.label, answer.score)
    if answer.status == "SKIP":
        return FilterResult(raw, note=f"daemon: {answer.reason}")
    return FilterResult(raw, error=f"daemon: {answer.reason}")


class Args:
    """The parsed command line: what `argparse` gives, without importing it on the fast path."""

    __slots__ = (
        "config",
        "exit_code",
        "fallback",
        "passthrough",
        "socket",
        "strict",
        "timeout",
        "verbose",
    )

    def __init__(self) -> None:
        self.socket: str | None = None
        self.config: str | None = None
        self.timeout: float | None = None
        self.strict: bool | None = None
        self.exit_code = False
        self.passthrough = True
        self.fallback = True
        self.verbose = 0

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


_FLAGS = {  # flag: (attribute, value), for the flags that take no value
    "--strict": ("strict", True),
    "--exit-code": ("exit_code", True),
    "--passthrough": ("passthrough", True),
    "--no-passthrough": ("passthrough", False),
    "--fallback": ("fallback", True),
    "--no-fallback": ("fallback", False),
}
_VALUED = {"--socket": "socket", "--config": "config", "-c": "config", "--timeout": "timeout"}


def _quick_parse(argv: Sequence[str]) -> Args | None:
    """The exact spellings a procmail recipe uses (`--exit-code`, `--socket=PATH`, `-v`), parsed
    without argparse; None for anything else (help, abbreviations, errors), which goes to
    argparse. argparse and its `re` and `gettext` imports cost ~15 ms of every piped message.
    tests/mailfilter/test_client.py checks that both parsers agree."""
    args = Args()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in _FLAGS:
            name, value = _FLAGS[arg]
            setattr(args, name, value)
            continue
        if arg in ("-v", "--verbose"):
            args.verbose += 1
            continue
        flag, eq, text = arg.partition("=")
        if eq and flag.startswith("--") and flag in _VALUED:
            pass
        elif arg in _VALUED and i < len(argv) and not argv[i].startswith("-"):
            flag, text = arg, argv[i]
            i += 1
        else:
            return None
        if _VALUED[flag] == "timeout":
            try:
                args.timeout = float(text)
            except ValueError:
                return None
        else:
            setattr(args, _VALUED[flag], text)
    return args


def parse_args(argv: Sequence[str] | None) -> Args:
    """The command line (a bad one exits 2 before stdin is read; procmail keeps its copy)."""
    words = sys.argv[1:] if argv is None else list(argv)
    quick = _quick_parse(words)
    return quick if quick is not None else _argparse(words)


def _argparse(argv: Sequence[str]) -> Args:
    import argparse

    class Formatter(argparse.HelpFormatter):
        """argparse's formatter with the width from `os`: its own default imports `shutil` (and
        with it bz2 and lzma) to ask the terminal's width."""

        def __init__(self, prog: str) -> None:
            try:
                width = os.get_terminal_size(sys.stderr.fileno()).columns - 2
            except (OSError, ValueError, AttributeError):  # not a terminal, closed, or None
                columns = os.environ.get("COLUMNS", "")
                width = int(columns) if columns.isdigit() else 78
            super().__init__(prog, width=max(40, width))

    p = argparse.ArgumentParser(
        prog="mailfilter-client",
        formatter_class=Formatter,
        description="Filter one message (stdin → stdout) through the mailfilter daemon.",
        epilog="Exit status: 0, or with --exit-code 0 spam, 1 ham, 2 unsure or not scored, "
        "3 error. On an error the message goes out unchanged (exit 0), or with --strict with "
        "exit 75 (EX_TEMPFAIL).",
    )
    p.add_argument("--socket", help="daemon socket (default: see the docs)")
    p.add_argument("-c", "--config", help="TOML config file")
    p.add_argument("--timeout", type=float, help="seconds to wait for the daemon (default 30)")
    p.add_argument("--strict", action="store_true", default=None, help="exit 75 on errors")
    p.add_argument("--exit-code", action="store_true", help="bogofilter-style exit status")
    p.add_argument(
        "--passthrough",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write the message to stdout (default); --no-passthrough writes nothing",
    )
    p.add_argument(
        "--fallback",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score in this process when no daemon runs (default); --no-fallback: fail open",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return p.parse_args(argv, namespace=Args())


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `bin/mailfilter-client`: stdin to stdout, exit with the filter's status."""
    args = parse_args(argv)
    level = {0: lazylog.WARNING, 1: lazylog.INFO}.get(args.verbose, lazylog.DEBUG)

    def setup_logging() -> None:
        import logging

        logging.basicConfig(level=level, format="mailfilter-client: %(levelname)s: %(message)s")

    lazylog.configure(setup_logging)
    mode = FilterMode(bool(args.strict), args.exit_code, args.passthrough)
    config = ClientConfig()
    try:
        config = load_client_config(args.config, args.socket, args.timeout)
    except (OSError, ValueError) as e:
        err = " ".join(str(e).split())
        log.error("cannot read the client settings: %s; using the defaults", err)
    if config.strict and not mode.strict:
        mode = FilterMode(True, mode.exit_code, mode.passthrough)

    def compute(raw: bytes) -> FilterResult:
        return check(raw, config, args.config, mode.passthrough, args.fallback)

    sys.exit(run_filter(sys.stdin.buffer, sys.stdout.buffer, compute, mode))


if __name__ == "__main__":
    main()
