"""The procmail filter: one message on stdin, the same message with our headers on stdout.

    :0fw
    | mailfilter filter

Mail is never lost here. The whole of stdin is read before anything else happens, and the
output is built in memory and written in one go, so whatever fails (settings, the model, the
message) the original bytes can still go out:

- default: fail open, the original message, unchanged, and exit 0;
- `strict`: the original message, and exit 75 (EX_TEMPFAIL) so an MDA that honours it defers
  delivery (with procmail add `:0 e` + `{ EXITCODE=75 HOST }` after the filter recipe);
- a failed write to stdout always exits 75, so a caller never takes a partial message for the
  filtered one (procmail's `w` flag then keeps its own copy).

With `exit_code`, the status says what the message is, like bogofilter: 0 spam, 1 ham, 2 unsure
(also for mail not scored: larger than `max_size`, or not a message at all), 3 error (75 when
strict). The message is still written unless passthrough is off (`--no-passthrough`, for
`* ? mailfilter filter --exit-code --no-passthrough` conditions).

Messages larger than `max_size` pass unchanged, like spamc's size cap. This module imports
neither torch nor typer: the model is loaded only when a message is scored in this process.
"""

from __future__ import annotations

from mailfilter.headers import looks_like_message, strip_our_headers, tag_message
from mailfilter.lazylog import Logger

TYPE_CHECKING = False  # the client imports this module per message: no typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import IO, Any

    from mailfilter.engine import Engine
    from mailfilter.settings import Settings

log = Logger(__name__)

EX_OK = 0
EX_TEMPFAIL = 75
EXIT_SPAM, EXIT_HAM, EXIT_UNSURE, EXIT_ERROR = 0, 1, 2, 3
_LABEL_EXIT = {"spam": EXIT_SPAM, "ham": EXIT_HAM, "unsure": EXIT_UNSURE}


class FilterMode:
    """How the result is reported: strict (75 on error), exit_code (bogofilter), passthrough.
    (Plain classes here, not dataclasses: importing `dataclasses` costs the client ~5 ms.)"""

    __slots__ = ("exit_code", "passthrough", "strict")

    def __init__(self, strict: bool = False, exit_code: bool = False, passthrough: bool = True):
        self.strict, self.exit_code, self.passthrough = strict, exit_code, passthrough

    def __repr__(self) -> str:
        return f"FilterMode({self.strict}, {self.exit_code}, {self.passthrough})"


class FilterResult:
    """The bytes to write and what the message was: spam/ham/unsure, or None if not scored;
    `note` says why a message was not scored (too large, not a message)."""

    __slots__ = ("error", "label", "note", "output", "score")

    def __init__(
        self,
        output: bytes,
        label: str | None = None,
        score: float | None = None,
        error: str | None = None,
        note: str | None = None,
    ) -> None:
        self.output, self.label, self.score, self.error, self.note = (
            output, label, score, error, note,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"FilterResult({len(self.output)} bytes, {self.label!r}, error={self.error!r})"


def exit_status(result: FilterResult, mode: FilterMode) -> int:
    """The process exit status for a result under a mode."""
    if result.error is not None:
        if mode.strict:
            return EX_TEMPFAIL
        return EXIT_ERROR if mode.exit_code else EX_OK
    if not mode.exit_code:
        return EX_OK
    return _LABEL_EXIT.get(result.label or "", EXIT_UNSURE)


def unscorable(raw: bytes, max_size: int) -> str | None:
    """Why a message passes unscored (too large, not a message), or None to score it."""
    if len(raw) > max_size:
        return f"too large to score ({len(raw)} > max_size {max_size} bytes)"
    if not looks_like_message(raw):
        return "not a message (no header block)"
    return None


def filter_with_engine(raw: bytes, settings: Settings, engine: Engine) -> FilterResult:
    """Score one message with a loaded engine and tag it (or pass it unscored)."""
    from mailfilter.message import to_text
    from mailfilter.verdict import judge

    why = unscorable(raw, settings.max_size)
    if why is not None:
        return FilterResult(raw, note=why)
    score = engine.score_texts([to_text(raw)])[0]
    verdict = judge(raw, score, settings, engine.threshold, engine.model_id)
    tagged = tag_message(raw, verdict, settings.subject_prefix)
    return FilterResult(tagged, verdict.label, score)


def filter_in_process(raw: bytes, config_path: Path | None = None, **flags: Any) -> FilterResult:
    """Load settings and the model here (torch is imported now), then filter one message."""
    from mailfilter.settings import load_settings

    settings = load_settings(config_path, **flags)
    why = unscorable(raw, settings.max_size)
    if why is not None:  # don't pay for a model load
        return FilterResult(raw, note=why)
    from mailfilter.engine import Engine

    engine = Engine.load(
        settings.checkpoint, device=settings.device, threads=settings.threads, batch_size=1
    )
    return filter_with_engine(raw, settings, engine)


def same_message(raw: bytes, output: bytes) -> bool:
    """True when `output` is `raw` apart from our headers (the check before anything goes out)."""
    return output == raw or strip_our_headers(output) == strip_our_headers(raw)


def read_all(stream: IO[bytes]) -> bytes:
    """Every byte of `stream` (stdin), read before anything can fail."""
    chunks = []
    while chunk := stream.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def run_filter(
    stdin: IO[bytes],
    stdout: IO[bytes],
    compute: Callable[[bytes], FilterResult],
    mode: FilterMode,
    strict_of: Callable[[], bool] | None = None,
) -> int:
    """Read stdin, compute, write stdout; fail open on any error. Returns the exit status.

    `strict_of` may turn strict mode on late (from settings), never off.
    """
    try:
        raw = read_all(stdin)
    except (OSError, ValueError) as e:
        log.error("cannot read the message from stdin: %s", e)
        return EX_TEMPFAIL  # we have nothing to give back: let the caller keep its copy
    try:
        result = compute(raw)
    except BaseException as e:  # fail open on anything, even SystemExit
        if isinstance(e, KeyboardInterrupt):
            log.error("interrupted; the message is passed on unchanged")
        detail = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        log.error("%s; the message is passed on unchanged", detail)
        result = FilterResult(raw, error=detail)
    if result.output is not raw and not same_message(raw, result.output):
        log.error("the filtered message differs from the original; passed on unchanged")
        result = FilterResult(raw, error="filtered message differs from the original")
    if result.error is not None and not mode.strict and strict_of is not None:
        try:
            strict = strict_of()
        except Exception:  # settings are what failed: keep the flags
            strict = mode.strict
        mode = FilterMode(strict, mode.exit_code, mode.passthrough)
    if result.note:
        log.info("%s; passed on unchanged", result.note)
    if mode.passthrough:
        try:
            stdout.write(result.output)
            stdout.flush()
        except (OSError, ValueError) as e:
            log.error("cannot write the message to stdout: %s", e)
            return EX_TEMPFAIL
    return exit_status(result, mode)
