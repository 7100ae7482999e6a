"""`mailfilter daemon`: hold the model, serve the socket, watch the mailboxes (see `daemon`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from mailfilter.cli.app import CliState, app
from mailfilter.settings import Action, Settings, load_settings

log = logging.getLogger(__name__)


@app.command(
    epilog="Signals: SIGTERM finishes the batch in hand and exits 0; SIGHUP reloads the "
    "settings and the model. Under systemd (Type=notify) it sends READY=1, STATUS=, WATCHDOG=1 "
    "and STOPPING=1. Exit status: 0 after SIGTERM, 2 when it cannot start (config, model, "
    "socket in use), 70 for an internal error."
)
def daemon(
    ctx: typer.Context,
    mailbox: Annotated[
        list[Path] | None,
        typer.Option(
            "--mailbox", "-m", help="Maildir or mbox to watch (repeatable; default: config)."
        ),
    ] = None,
    action: Annotated[
        Action | None, typer.Option(help="none, tag or move (default: config).")
    ] = None,
    socket_path: Annotated[
        Path | None, typer.Option("--socket", help="Unix socket to serve.")
    ] = None,
    batch_window: Annotated[
        float | None, typer.Option(min=0.0, max=60.0, help="Seconds to gather arrivals.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="p(spam) at or above which is spam.")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Model file (default: the bundled model).")
    ] = None,
    watch: Annotated[
        bool | None, typer.Option("--watch/--no-watch", help="Watch the mailboxes.")
    ] = None,
) -> None:
    """Run the mailfilter daemon in the foreground (systemd Type=notify)."""
    from mailfilter.daemon import run_daemon

    cli: CliState = ctx.obj
    flags: dict[str, object] = {
        "mailboxes": mailbox or None,
        "action": action,
        "socket_path": socket_path,
        "batch_window": batch_window,
        "threshold": threshold,
        "checkpoint": checkpoint,
        "watch": watch,
    }
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)  # a daemon's log is its journal

    def settings() -> Settings:
        return load_settings(cli.config_path, **flags)

    raise typer.Exit(run_daemon(settings))
