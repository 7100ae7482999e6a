"""Logging that costs nothing until something is logged.

The thin client runs once per delivered message, and importing `logging` would cost it more
than the daemon's whole answer. Its code path logs only on errors and with `-v`, so it logs
through `Logger` here, which imports `logging`, applies the configuration registered with
`configure`, and hands the record over, all on the first call.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Callable

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # logging's own numbers
_setup: list[Callable[[], None]] = []


def configure(setup: Callable[[], None]) -> None:
    """Run `setup` (say, a `logging.basicConfig` call) just before the first record."""
    _setup.append(setup)


class Logger:
    """The part of `logging.Logger`'s interface that the client path uses."""

    def __init__(self, name: str) -> None:
        self.name = name

    def log(self, level: int, msg: str, *args: object) -> None:
        """Import logging (first call only), configure it, and log the record."""
        import logging

        while _setup:
            _setup.pop(0)()
        logging.getLogger(self.name).log(level, msg, *args)

    def info(self, msg: str, *args: object) -> None:
        """`Logger.info`."""
        self.log(INFO, msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        """`Logger.warning`."""
        self.log(WARNING, msg, *args)

    def error(self, msg: str, *args: object) -> None:
        """`Logger.error`."""
        self.log(ERROR, msg, *args)
