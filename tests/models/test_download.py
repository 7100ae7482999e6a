"""Resumable, verified downloads against a loopback server that misbehaves on request."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from models.download import DownloadError, default_cache_dir, download, hub_download
from models.hf_import import resolve_base_model

WEIGHTS = "/openai-community/gpt2/resolve/main/model.safetensors"
CDN = "/cdn/blobs/model.safetensors"


@dataclass
class FakeHub:
    """What the loopback server serves, and how it misbehaves."""

    files: dict[str, bytes] = field(default_factory=dict)
    # path -> (redirect target, extra headers on the redirect), as the Hub does for LFS files
    redirects: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    drop_after: list[int] = field(default_factory=list)  # one entry per GET that gets cut short
    stall_after: list[int] = field(default_factory=list)  # one entry per GET that then hangs
    ignore_range: bool = False
    log: list[tuple[str, str | None, int]] = field(default_factory=list)  # path, Range, status
    url: str = ""


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out and hung up is what some tests are about


class Handler(BaseHTTPRequestHandler):
    hub: FakeHub

    def do_GET(self) -> None:
        hub, rng = self.hub, self.headers.get("Range")
        if self.path in hub.redirects:
            target, extra = hub.redirects[self.path]
            return self.reply(302, b"", {"Location": target, **extra}, rng)
        if self.path not in hub.files:
            return self.reply(404, b"not found", {}, rng)
        data, start = hub.files[self.path], 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not hub.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                return self.reply(416, b"", {"Content-Range": f"bytes */{len(data)}"}, rng)
            extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            return self.reply(206, data[start:], extra, rng)
        return self.reply(200, data, {}, rng)

    def reply(self, status: int, body: bytes, extra: dict[str, str], rng: str | None) -> None:
        hub = self.hub
        hub.log.append((self.path, rng, status))
        self.send_response(status)
        for k, v in {**hub.headers.get(self.path, {}), **extra}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))  # always the full promise
        self.end_headers()
        if status in (200, 206) and hub.drop_after:
            self.wfile.write(body[: hub.drop_after.pop(0)])
            return  # HTTP/1.0: returning closes the connection mid-body
        if status in (200, 206) and hub.stall_after:
            self.wfile.write(body[: hub.stall_after.pop(0)])
            self.wfile.flush()
            time.sleep(1.0)
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A loopback HTTP server on a free port, serving whatever the test puts in `FakeHub`."""
    state = FakeHub()
    handler = type("BoundHandler", (Handler,), {"hub": state})
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A ~2.4 MB safetensors file, big enough to span several 1 MiB reads."""
    path = tmp_path_factory.mktemp("w") / "model.safetensors"
    g = torch.Generator().manual_seed(0)
    save_file({"wte.weight": torch.randn(600, 1000, generator=g)}, str(path))
    return path.read_bytes()


def serve_like_the_hub(hub: FakeHub, data: bytes, advertised: bytes | None = None) -> str:
    """`resolve` redirects to a CDN; the redirect carries the LFS sha256 of `advertised`."""
    advertised = data if advertised is None else advertised
    linked = {"X-Linked-Etag": f'"{sha256(advertised)}"', "X-Linked-Size": str(len(advertised))}
    hub.redirects[WEIGHTS] = (CDN, linked)
    hub.files[CDN] = data
    hub.headers[CDN] = {"ETag": '"0123456789abcdef0123456789abcdef"'}  # an md5, not a sha256
    return hub.url + WEIGHTS


def cache_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_full_download_is_checked_against_the_sha256_on_the_redirect(hub, weights, tmp_path):
    url = serve_like_the_hub(hub, weights)
    dest = download(url, tmp_path / "model.safetensors", progress=False)
    assert dest.read_bytes() == weights
    assert cache_files(tmp_path) == [dest]
    assert hub.log == [(WEIGHTS, None, 302), (CDN, None, 200)]


def test_dropped_connection_resumes_with_range_and_ends_byte_identical(hub, weights, tmp_path):
    url = serve_like_the_hub(hub, weights)
    hub.drop_after = [1_000_000, 300_000]
    dest = download(url, tmp_path / "model.safetensors", progress=False, backoff=0)
    assert dest.read_bytes() == weights
    gets = [entry for entry in hub.log if entry[0] == CDN]
    assert gets == [
        (CDN, None, 200),
        (CDN, "bytes=1000000-", 206),
        (CDN, "bytes=1300000-", 206),
    ]


def test_stalled_connection_times_out_and_resumes(hub, weights, tmp_path):
    url = serve_like_the_hub(hub, weights)
    hub.stall_after = [500_000]
    dest = download(url, tmp_path / "model.safetensors", progress=False, timeout=0.3, backoff=0)
    assert dest.read_bytes() == weights
    assert (CDN, "bytes=500000-", 206) in hub.log


def test_part_file_left_by_an_earlier_run_is_resumed(hub, weights, tmp_path):
    url = serve_like_the_hub(hub, weights)
    (tmp_path / "model.safetensors.part").write_bytes(weights[:700_000])
    dest = download(url, tmp_path / "model.safetensors", progress=False)
    assert dest.read_bytes() == weights
    assert hub.log[-1] == (CDN, "bytes=700000-", 206)


def test_complete_part_file_is_finished_on_416(hub, weights, tmp_path):
    url = serve_like_the_hub(hub, weights)
    (tmp_path / "model.safetensors.part").write_bytes(weights)
    dest = download(url, tmp_path / "model.safetensors", progress=False)
    assert dest.read_bytes() == weights
    assert hub.log[-1] == (CDN, f"bytes={len(weights)}-", 416)


def test_server_ignoring_range_restarts_from_zero(hub, weights, tmp_path):
    url = serve_like_the_hub(hub, weights)
    hub.ignore_range = True
    (tmp_path / "model.safetensors.part").write_bytes(b"stale bytes of another file")
    dest = download(url, tmp_path / "model.safetensors", progress=False)
    assert dest.read_bytes() == weights
    assert hub.log[-1] == (CDN, "bytes=27-", 200)


def test_corrupt_file_is_rejected_and_nothing_is_cached(hub, weights, tmp_path):
    corrupt = bytearray(weights)
    corrupt[1_234_567] ^= 0xFF
    url = serve_like_the_hub(hub, bytes(corrupt), advertised=weights)
    with pytest.raises(DownloadError, match="sha256 mismatch") as e:
        download(url, tmp_path / "model.safetensors", progress=False)
    assert "\n" not in str(e.value)
    assert cache_files(tmp_path) == []


def test_caller_given_hash_and_size_are_enforced(hub, weights, tmp_path):
    hub.files["/plain"] = weights  # no hash advertised anywhere
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(hub.url + "/plain", tmp_path / "a", sha256="0" * 64, progress=False)
    with pytest.raises(DownloadError, match=r"expected 10$"):
        download(hub.url + "/plain", tmp_path / "b", size=10, progress=False)
    assert cache_files(tmp_path) == []
    dest = download(hub.url + "/plain", tmp_path / "c", sha256=sha256(weights), progress=False)
    assert dest.read_bytes() == weights


def test_http_error_is_not_retried(hub, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(hub.url + "/absent", tmp_path / "x", progress=False, backoff=0)
    assert len(hub.log) == 1


def test_retries_are_bounded_and_keep_the_part_for_later(hub, weights, tmp_path):
    hub.files["/flaky"] = weights
    hub.drop_after = [100_000] * 10
    with pytest.raises(DownloadError, match="giving up after 2 retries"):
        download(hub.url + "/flaky", tmp_path / "x", progress=False, retries=2, backoff=0)
    assert len(hub.log) == 3
    assert (tmp_path / "x.part").stat().st_size == 300_000
    assert not (tmp_path / "x").exists()


def test_cache_and_endpoint_come_from_the_environment_at_call_time(
    hub, weights, tmp_path, monkeypatch
):
    serve_like_the_hub(hub, weights)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("MAILFILTER_HF_ENDPOINT", hub.url)
    assert default_cache_dir() == tmp_path / "mailfilter"
    path = hub_download("openai-community/gpt2", "model.safetensors", progress=False)
    assert path == tmp_path / "mailfilter/hf/openai-community/gpt2/main/model.safetensors"
    assert path.read_bytes() == weights
    hub.log.clear()
    assert hub_download("openai-community/gpt2", "model.safetensors") == path
    assert hub.log == []  # a cached file costs no request


def test_resolve_base_model_gpt2_end_to_end_through_the_endpoint_override(hub, tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        n_positions=64,
        vocab_size=500,
        bos_token_id=0,
        eos_token_id=0,
    )
    theirs = transformers.GPT2LMHeadModel(config).eval()
    theirs.save_pretrained(tmp_path / "saved", safe_serialization=True)
    serve_like_the_hub(hub, (tmp_path / "saved/model.safetensors").read_bytes())
    config_json = (tmp_path / "saved/config.json").read_bytes()
    hub.files["/openai-community/gpt2/resolve/main/config.json"] = config_json

    ours = resolve_base_model("gpt2", tmp_path / "cache", endpoint=hub.url, progress=False)
    assert ours.config.n_head == 2  # from the served config.json; the gpt2 preset says 12
    idx = torch.randint(0, 500, (2, 11))
    with torch.no_grad():
        assert torch.allclose(ours(idx), theirs(idx).logits, atol=1e-5)
    cached = tmp_path / "cache/hf/openai-community/gpt2/main"
    assert sorted(p.name for p in cached.iterdir()) == ["config.json", "model.safetensors"]
