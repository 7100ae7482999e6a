"""`mailfilter filter`: the procmail filter (`:0fw | mailfilter filter`), scoring in-process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mailfilter.cli.app import CliState, app
from mailfilter.filter import FilterMode, FilterResult, filter_in_process, run_filter

EXIT_CODES = (
    "Exit status: 0, with the message (tagged, or unchanged on any error: fail open). "
    "With --exit-code, like bogofilter: 0 spam, 1 ham, 2 unsure or not scored (larger than "
    "max_size, not a message), 3 error; the message is still written unless --no-passthrough. "
    "With --strict (or strict = true in the config) an error exits 75 (EX_TEMPFAIL) instead, "
    "still writing the unchanged message; a failed write to stdout always exits 75."
)


@app.command("filter", epilog=EXIT_CODES)
def filter_command(
    ctx: typer.Context,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 75 (EX_TEMPFAIL) on an error.")
    ] = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 0 spam, 1 ham, 2 unsure, 3 error.")
    ] = False,
    passthrough: Annotated[
        bool,
        typer.Option(
            "--passthrough/--no-passthrough", help="Write the message to stdout (default)."
        ),
    ] = True,
    threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="p(spam) at or above which mail is spam."),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Model file (default: the bundled model).")
    ] = None,
) -> None:
    """Read one message on stdin, write it whole with X-Spam-* headers to stdout."""
    cli: CliState = ctx.obj
    mode = FilterMode(strict, exit_code, passthrough)
    flags = {"threshold": threshold, "checkpoint": checkpoint}

    def compute(raw: bytes) -> FilterResult:
        return filter_in_process(raw, cli.config_path, **flags)

    def strict_setting() -> bool:
        return cli.settings().strict

    rc = run_filter(sys.stdin.buffer, sys.stdout.buffer, compute, mode, strict_of=strict_setting)
    raise typer.Exit(rc)
