"""The typer application, its global options, and the edge where errors become exit codes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from mailfilter.settings import Settings, load_settings

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE
OUR_PACKAGES = ("mailfilter.", "models.", "training.")

app = typer.Typer(
    name="mailfilter",
    help="A GPT-2 spam filter for Maildir, mbox and procmail.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold mail
    add_completion=False,
)


class CliState:
    """What the callback hands each command: settings built once, from every source."""

    def __init__(self) -> None:
        self.config_path: Path | None = None
        self._settings: Settings | None = None

    def settings(self, **flags: object) -> Settings:
        """The effective settings, with this command's flags applied on top."""
        if flags:
            return load_settings(self.config_path, **flags)
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings


@app.callback()
def main_callback(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config file.", show_default=False)
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging.")] = 0,
) -> None:
    """mailfilter: score mail with a fine-tuned GPT-2 and tag or move spam."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="mailfilter: %(levelname)s: %(message)s")
    state = CliState()
    state.config_path = config
    ctx.obj = state


def is_user_error(exc: BaseException) -> bool:
    """Our own `...Error` exceptions (bad path, corrupt checkpoint, bad config) and OS errors."""
    module = type(exc).__module__ + "."
    ours = module.startswith(OUR_PACKAGES) and type(exc).__name__.endswith("Error")
    return ours or isinstance(exc, OSError)


def _usage_errors() -> tuple[type[Exception], ...]:
    """click's error classes: typer 0.2x vendors click (`typer.TyperException` is their base),
    older typer uses the `click` package itself."""
    kinds: list[type[Exception]] = []
    vendored = getattr(typer, "TyperException", None)
    if vendored is not None:
        kinds.append(vendored)
    try:
        import click
    except ImportError:  # pragma: no cover - typer 0.2x does not need it
        pass
    else:
        kinds.append(click.exceptions.ClickException)
    return tuple(kinds)


def main() -> None:
    """Console-script entry point: run the app, turning errors into one line and an exit code."""
    import mailfilter.cli  # noqa: F401  (registers the commands)

    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        rc = app(standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except Exception as e:
        if isinstance(e, _usage_errors()):  # bad flags or arguments: click's message, exit 2
            e.show()  # type: ignore[attr-defined]
            sys.exit(getattr(e, "exit_code", EXIT_USER_ERROR))
        if debug:
            raise
        if is_user_error(e):
            print(f"mailfilter: error: {e}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        print(
            f"mailfilter: internal error: {type(e).__name__}: {e} (rerun with --debug for details)",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(rc if isinstance(rc, int) else EXIT_OK)
