"""Resumable, verified downloads into the user's cache, and Hugging Face Hub file URLs.

A file is written to `<name>.part` beside its destination and renamed into place only once its
size and sha256 (when known) check out, so the cache never holds a truncated or corrupt file.
An interrupted transfer resumes with an HTTP `Range` request; a server that ignores `Range` gets
a restart from zero. Stdlib `urllib` only. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import IO

from tqdm import tqdm

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
USER_AGENT = "mailfilter (+urllib)"
CHUNK_SIZE = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(Exception):
    """A download failed, or what arrived is not the file that was expected."""


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/mailfilter`, or `~/.cache/mailfilter` when that is unset or relative."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mailfilter"


def hub_endpoint(endpoint: str | None = None) -> str:
    """Hub base URL: the argument, else `MAILFILTER_HF_ENDPOINT`, `HF_ENDPOINT`, huggingface.co."""
    chosen = (
        endpoint
        or os.environ.get("MAILFILTER_HF_ENDPOINT")
        or os.environ.get("HF_ENDPOINT")
        or DEFAULT_ENDPOINT
    )
    return chosen.rstrip("/")


def hub_file_url(
    repo_id: str, filename: str, revision: str = "main", endpoint: str | None = None
) -> str:
    """The `resolve` URL of one file in a Hub model repo."""
    return f"{hub_endpoint(endpoint)}/{repo_id}/resolve/{revision}/{filename}"


def hub_download(
    repo_id: str,
    filename: str,
    *,
    revision: str = "main",
    cache_dir: Path | None = None,
    endpoint: str | None = None,
    sha256: str | None = None,
    progress: bool | None = None,
    timeout: float = 30.0,
    retries: int = 5,
) -> Path:
    """A Hub file from the cache (`<cache>/hf/<repo>/<revision>/<file>`), downloaded if absent."""
    root = cache_dir if cache_dir is not None else default_cache_dir()
    dest = root / "hf" / repo_id / revision / filename
    if dest.is_file():
        logger.debug("using cached %s", dest)
        return dest
    url = hub_file_url(repo_id, filename, revision, endpoint)
    return download(url, dest, sha256=sha256, progress=progress, timeout=timeout, retries=retries)


class _RecordingRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib does, keeping each redirect response's headers.

    The Hub answers a large file's `resolve` URL with a redirect to a CDN; the LFS sha256
    (`X-Linked-Etag`) and size (`X-Linked-Size`) are on that redirect, not on the CDN's answer.
    """

    def __init__(self) -> None:
        self.hops: list[Message] = []

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        self.hops.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _advertised_sha256(headers: list[Message]) -> str | None:
    for h in headers:
        for name in ("X-Linked-Etag", "ETag"):
            value = (h.get(name) or "").strip()
            value = value.removeprefix("W/").strip('"').lower()
            if _SHA256_RE.fullmatch(value):
                return value
    return None


def _advertised_size(headers: list[Message]) -> int | None:
    for h in headers:
        value = h.get("X-Linked-Size")
        if value and value.isdigit():
            return int(value)
    return None


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_retryable(e: Exception) -> bool:
    """Server hiccups and dropped or stalled connections; not 4xx, unknown hosts or disk errors."""
    if isinstance(e, urllib.error.HTTPError):
        return e.code == 429 or e.code >= 500
    if isinstance(e, urllib.error.URLError):
        return not isinstance(e.reason, socket.gaierror)
    return isinstance(e, (ConnectionError, TimeoutError, ssl.SSLError, http.client.HTTPException))


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool | None = None,
    timeout: float = 30.0,
    retries: int = 5,
    backoff: float = 1.0,
) -> Path:
    """Download `url` to `dest` via `dest.part`, resuming, then verify size and sha256."""
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    show = sys.stderr.isatty() if progress is None else progress
    expected_sha = sha256.lower() if sha256 else None
    expected_size = size
    failures = 0
    while True:
        try:
            done, expected_sha, expected_size = _fetch_once(
                url, part, expected_sha, expected_size, timeout, show
            )
        except DownloadError:
            part.unlink(missing_ok=True)
            raise
        except Exception as e:
            if not _is_retryable(e):
                raise
            failures += 1
            if failures > retries:
                raise DownloadError(f"{url}: giving up after {retries} retries: {e}") from e
            logger.warning("download of %s interrupted (%s); retrying", url, e)
            time.sleep(min(backoff * 2 ** (failures - 1), 30.0))
            continue
        if done:
            break
        failures += 1
        if failures > retries:
            raise DownloadError(f"{url}: giving up after {retries} retries: connection dropped")
        logger.warning("download of %s stopped early; resuming", url)
        time.sleep(min(backoff * 2 ** (failures - 1), 30.0))
    _verify(url, part, expected_sha, expected_size)
    os.replace(part, dest)
    logger.info("downloaded %s to %s", url, dest)
    return dest


def _fetch_once(
    url: str,
    part: Path,
    sha256: str | None,
    size: int | None,
    timeout: float,
    show: bool,
) -> tuple[bool, str | None, int | None]:
    """One request: append to `part` from where it ends. Returns (complete?, sha256, size)."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        logger.warning("%s is larger than the expected %d bytes; restarting", part, size)
        part.unlink()
        have = 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    redirects = _RecordingRedirectHandler()
    opener = urllib.request.build_opener(redirects)
    try:
        resp = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # Range past the end: the part is either already whole or belongs to another file.
            whole = (e.headers.get("Content-Range") or "").rpartition("/")[2]
            if whole.isdigit() and int(whole) == have and (size is None or size == have):
                return True, sha256, have
            logger.warning("server rejected resume of %s; restarting", part)
            part.unlink()
            return False, sha256, size
        if _is_retryable(e):
            raise
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
    with resp:
        all_headers = [*redirects.hops, resp.headers]
        sha256 = sha256 or _advertised_sha256(all_headers)
        size = size if size is not None else _advertised_size(all_headers)
        if resp.status == 206:
            m = _CONTENT_RANGE_RE.fullmatch(resp.headers.get("Content-Range") or "")
            if m is None or int(m.group(1)) != have:
                raise DownloadError(
                    f"{url}: bad Content-Range {resp.headers.get('Content-Range')!r}"
                )
            total = None if m.group(3) == "*" else int(m.group(3))
            mode = "ab"
            logger.info("resuming %s at byte %d", url, have)
        else:
            if have:
                logger.info("server ignored the Range request for %s; restarting from zero", url)
            have = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        if size is None:
            size = total
        elif total is not None and total != size:
            raise DownloadError(f"{url}: server says {total} bytes, expected {size}")
        with (
            open(part, mode) as f,
            tqdm(
                total=size,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not show,
            ) as bar,
        ):
            # read1, not read: what arrived before a stall is kept when the timeout strikes.
            while chunk := resp.read1(CHUNK_SIZE):
                f.write(chunk)
                have += len(chunk)
                bar.update(len(chunk))
                if size is not None and have > size:
                    raise DownloadError(f"{url}: received more than the expected {size} bytes")
            f.flush()
            os.fsync(f.fileno())
    # http.client ends a short body silently: a dropped connection shows only as a short count.
    return size is None or have == size, sha256, size


def _verify(url: str, part: Path, sha256: str | None, size: int | None) -> None:
    """Raise DownloadError (after deleting `part`) unless it has the expected size and hash."""
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink()
        raise DownloadError(f"{url}: got {actual_size} bytes, expected {size}")
    if sha256 is None:
        logger.warning("no sha256 known for %s; checked its size only", url)
        return
    actual = _file_sha256(part)
    if actual != sha256:
        part.unlink()
        raise DownloadError(f"{url}: sha256 mismatch (got {actual[:12]}…, expected {sha256[:12]}…)")
