"""The `mailfilter` command line; each command lives in its own module and registers on `app`."""

from mailfilter.cli import (
    config,  # noqa: F401
    corpus,  # noqa: F401
    daemon,  # noqa: F401
    filter,  # noqa: F401
    learn,  # noqa: F401
    pretrain,  # noqa: F401
    scan,  # noqa: F401
    train,  # noqa: F401
)
from mailfilter.cli.app import app, main

__all__ = ["app", "main"]
