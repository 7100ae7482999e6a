"""Senders whose mail is never marked spam: `welcomelist_from`, as SpamAssassin names it.

Each entry is an address or a shell-style pattern (`ann@example.org`, `*@example.org`,
`*@*.example.org`), matched without regard to case against every address in the message's
`From:` header. The model still scores the message (the score is reported and recorded); only
the verdict becomes ham. `From:` is whatever the sender wrote, so a spammer who uses a welcomed
address passes too: list the people and small domains you write with, never a whole free-mail
provider. A message whose `From:` cannot be read is simply not welcomed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from fnmatch import fnmatchcase

from mailfilter.message import EMAIL_ERRORS

log = logging.getLogger(__name__)

# Only the start of a message is parsed for its From: header (a header block is rarely over a
# few KiB; a hostile one must not cost the time of a whole message).
MAX_HEADER_BYTES = 256 * 1024


class WelcomelistError(ValueError):
    """A `welcomelist_from` entry that is not an address or an address pattern."""


def check_pattern(entry: str) -> str:
    """The entry as it is matched (trimmed, lower-cased), or a one-line error saying why not."""
    pattern = entry.strip().lower()
    local, at, domain = pattern.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in pattern):
        raise WelcomelistError(
            f"{entry!r} is not an address or pattern (use ann@example.org or *@example.org)"
        )
    return pattern


def from_addresses(raw: bytes) -> list[str]:
    """The addresses of the `From:` header(s), lower-cased; [] when there are none or the header
    block cannot be read."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:MAX_HEADER_BYTES])
        values = [str(v) for v in headers.get_all("From", [])]
        return [addr.lower() for _, addr in getaddresses(values) if "@" in addr]
    except EMAIL_ERRORS as e:  # hostile headers: not welcomed, and never an error
        log.debug("cannot read the From: header: %s", type(e).__name__)
        return []


def welcomed_sender(raw: bytes, patterns: Sequence[str]) -> str | None:
    """The first `From:` address that a pattern matches, or None (always None without
    patterns, and then nothing is parsed)."""
    if not patterns:
        return None
    for address in from_addresses(raw):
        if any(fnmatchcase(address, p) for p in patterns):
            return address
    return None
