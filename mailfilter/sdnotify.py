"""sd_notify(3) without libsystemd, like gunicorn's `systemd.py`: does nothing outside systemd.

systemd passes `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace) to a
`Type=notify` service; each state is one datagram such as `READY=1`, `STATUS=...`,
`WATCHDOG=1` or `STOPPING=1`. `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, if set, naming us) asks
for `WATCHDOG=1` more often than that many microseconds.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def sd_notify(state: str, unset_environment: bool = False) -> bool:
    """Send one state datagram to systemd; False (and nothing sent) when not under systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if unset_environment:
        os.environ.pop("NOTIFY_SOCKET", None)
    if not addr or addr[0] not in ("@", "/"):
        return False
    target = "\0" + addr[1:] if addr[0] == "@" else addr
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(state.encode("utf-8", "replace"))
    except OSError as e:
        log.debug("sd_notify %r failed: %s", state, e)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC), or None when not asked."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None
