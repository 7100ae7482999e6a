"""`mailfilter config show`: the effective settings and where each value came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mailfilter.cli.app import CliState, app
from mailfilter.settings import explain_settings

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _toml_value(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


@config_app.command("show")
def show(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print every setting, its effective value and its source (default, file, env, flag)."""
    cli: CliState = ctx.obj
    _, path, rows = explain_settings(cli.config_path)
    if json_out:
        data = {
            "config_file": str(path) if path else None,
            "settings": {r.key: {"value": _jsonable(r.value), "source": r.source} for r in rows},
        }
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"# config file: {path if path else 'none'}")
    width = max(len(f"{r.key} = {_toml_value(r.value)}") for r in rows)
    for r in rows:
        line = f"{r.key} = {_toml_value(r.value)}"
        typer.echo(f"{line:<{width}}  # {r.source}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
