"""The `mailfilter` command line; each command lives in its own module and registers on `app`."""

from mailfilter.cli import train  # noqa: F401
from mailfilter.cli.app import app, main

__all__ = ["app", "main"]
