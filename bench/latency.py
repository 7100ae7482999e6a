"""Per-message latency of the procmail path: client → daemon, in-process, and spamc → spamd.

Every path delivers the same synthetic messages with real `procmail` (`:0fw | FILTER`, then
Maildir delivery), one procmail process per message, as an MDA runs it; the wall time of each
delivery is recorded, and the median and p95 reported. The filter alone (stdin → stdout,
without procmail) is timed too, since that is the part mailfilter owns.

    python bench/latency.py [--checkpoint PATH] [--messages 30] [--in-process 5] [--no-spamd]

The model: the bundled one if `models/data/default.safetensors` exists, else `--checkpoint`,
else a tiny random classifier (then the figures measure the plumbing, not a real model's
forward pass); the output says which. spamd runs on 127.0.0.1 with local tests only (`-L`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailfilter.client import ask_daemon  # noqa: E402
from mailfilter.engine import bundled_checkpoint_path  # noqa: E402

WORDS = [
    "meeting", "notes", "invoice", "project", "schedule", "review", "budget", "report", "prize",
    "winner", "free", "offer", "click", "pills", "cheap", "money", "urgent", "account", "verify",
    "password", "lunch", "friday", "attached", "draft",
]  # fmt: skip


def messages(n: int) -> list[bytes]:
    """Synthetic mail, 1 to 6 KB, half spam-like, deterministic."""
    out = []
    for i in range(n):
        body = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(150 + 120 * (i % 6)))
        subject = "cheap prize offer" if i % 2 else "project meeting notes"
        out.append(
            (
                f"From: sender{i}@example.com\nTo: me@example.org\nSubject: {subject} {i}\n"
                f"Message-ID: <{i}@bench.example>\nDate: Thu, 1 Jan 2025 00:00:{i % 60:02d} +0000\n"
                f"\n{body}\n"
            ).encode()
        )
    return out


def pick_model(given: Path | None, workdir: Path) -> tuple[Path, str]:
    """The checkpoint to use and a line saying which it is."""
    bundled = bundled_checkpoint_path()
    if bundled.is_file():
        return bundled, f"bundled model {bundled}"
    if given is not None:
        return given, f"checkpoint {given}"
    import torch

    from models.checkpoint import CheckpointMeta, save_checkpoint
    from models.classifier import GPTClassifier
    from models.gpt import GPTConfig

    config = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=128)
    torch.manual_seed(0)
    path = save_checkpoint(
        GPTClassifier(config).eval(),
        CheckpointMeta(config=config, max_length=128, threshold=0.5),
        workdir / "tiny.safetensors",
    )
    return path, "tiny random classifier (no bundled model): times the plumbing, not a real model"


def client_command() -> list[str]:
    """The installed console script beside this interpreter, else `python -m`."""
    script = Path(sys.executable).parent / "mailfilter-client"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mailfilter.client"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(run: Callable[[bytes], None], mails: list[bytes]) -> list[float]:
    """Milliseconds per message."""
    times = []
    for raw in mails:
        start = time.perf_counter()
        run(raw)
        times.append((time.perf_counter() - start) * 1000)
    return times


class Procmail:
    """A temp HOME with a .procmailrc filtering through one command into a Maildir."""

    def __init__(self, workdir: Path, name: str, filter_cmd: str, env: dict[str, str]) -> None:
        self.home = workdir / name
        self.maildir = self.home / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        self.rc = self.home / ".procmailrc"
        self.rc.write_text(
            f"SHELL=/bin/sh\nMAILDIR={self.maildir}/\nDEFAULT=$MAILDIR\n"
            f"LOGFILE={self.home}/procmail.log\n:0fw\n| {filter_cmd}\n"
        )
        self.env = {**env, "HOME": str(self.home)}

    def deliver(self, raw: bytes) -> None:
        subprocess.run(
            ["procmail", "-p", str(self.rc)], input=raw, env=self.env, check=True, timeout=300
        )

    def delivered(self) -> int:
        return len(list((self.maildir / "new").iterdir()))


def pipe(cmd: list[str], env: dict[str, str]) -> Callable[[bytes], None]:
    def run(raw: bytes) -> None:
        done = subprocess.run(cmd, input=raw, env=env, capture_output=True, timeout=300)
        if done.returncode != 0 or b"X-" not in done.stdout:
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr[-300:]!r}")

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_spamd(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [
        "spamd", "-L", "-x", "-u", "nobody", f"--listen=127.0.0.1:{port}", "--max-children=2",
        "--min-children=1", "-s", "stderr",
    ]  # fmt: skip
    log = open(workdir / "spamd.log", "wb")  # noqa: SIM115  (spamd holds it)
    proc = subprocess.Popen(cmd, stderr=log, stdout=log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"spamd exited; see {workdir / 'spamd.log'}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("spamd did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    """Run every path on the same messages and print median and p95 per message."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--messages", type=int, default=30, help="messages per fast path")
    p.add_argument("--in-process", type=int, default=5, help="messages for the model-load path")
    p.add_argument("--no-spamd", action="store_true", help="skip the spamc → spamd peer")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--client", type=Path, action="append", default=[],
                   help="also time this mailfilter-client script (say, one installed with "
                   "`pip install --no-deps .` in a fresh venv, without this checkout's .pth files)")
    args = p.parse_args()
    if shutil.which("procmail") is None:
        sys.exit("bench/latency.py: procmail is not installed (apt-get install procmail)")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mailfilter-latency-") as tmp:
        workdir = Path(tmp)
        model, which = pick_model(args.checkpoint, workdir)
        mails = messages(args.messages)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFILTER_")}
        env.update(
            PYTHONPATH=str(REPO),
            MAILFILTER_CHECKPOINT=str(model),
            MAILFILTER_STATE_PATH=str(workdir / "state.db"),
            XDG_CONFIG_HOME=str(workdir / "config"),
        )
        sock = workdir / "mailfilter.sock"
        client = [*client_command(), "--socket", str(sock)]
        daemon = subprocess.Popen(
            [sys.executable, "-c", "from mailfilter.cli import main; main()", "daemon",
             "--socket", str(sock), "--no-watch"],
            env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if ask_daemon(b"", [sock], 5.0).status in ("OK", "SKIP"):
                        break
                except Exception:
                    if daemon.poll() is not None or time.monotonic() > deadline:
                        sys.exit("bench/latency.py: the daemon did not start")
                    time.sleep(0.2)
            pipe(client, env)(mails[0])  # warm the page cache
            python = [sys.executable, "-c", "pass"]
            results["python -c pass (interpreter start, baseline)"] = stats(
                timed(lambda raw: subprocess.run(python, env=env, check=True), mails)
            )
            bare = [sys.executable, "-I", "-S", "-c", "pass"]  # what site's .pth files cost
            results["python -I -S -c pass (no site-packages)"] = stats(
                timed(lambda raw: subprocess.run(bare, env=env, check=True), mails)
            )
            results["daemon round trip from a warm process"] = stats(
                timed(lambda raw: ask_daemon(raw, [sock], 30.0) and None, mails)
            )
            results["client → daemon (filter only)"] = stats(timed(pipe(client, env), mails))
            # An installed client imports its own copy: no PYTHONPATH (it alone costs ~17 ms).
            own = {k: v for k, v in env.items() if k != "PYTHONPATH"}
            for other in args.client:
                venv_python = [str(other.parent / "python3"), "-c", "pass"]
                results[f"{other.parent.parent.name}: python -c pass"] = stats(
                    timed(lambda raw, c=venv_python: subprocess.run(c, env=own, check=True), mails)
                )
                results[f"{other.parent.parent.name}: client → daemon"] = stats(
                    timed(pipe([str(other), "--socket", str(sock)], own), mails)
                )
            pm = Procmail(workdir, "client", " ".join(client), env)
            results["procmail → client → daemon"] = stats(timed(pm.deliver, mails))
            assert pm.delivered() == len(mails)
        finally:
            stop(daemon)
        fallback = [*client_command(), "--socket", str(workdir / "no-daemon.sock")]
        few = mails[: args.in_process]
        pm = Procmail(workdir, "inprocess", " ".join(fallback), env)
        results["procmail → client, no daemon (in-process)"] = stats(timed(pm.deliver, few))
        if not args.no_spamd and shutil.which("spamd") and shutil.which("spamc"):
            spamd, port = start_spamd(workdir)
            try:
                spamc = ["spamc", "-d", "127.0.0.1", "-p", str(port)]
                pipe(spamc, env)(mails[0])
                results["spamc → spamd (filter only)"] = stats(timed(pipe(spamc, env), mails))
                pm = Procmail(workdir, "spamc", " ".join(spamc), env)
                results["procmail → spamc → spamd"] = stats(timed(pm.deliver, mails))
            finally:
                stop(spamd)
    print(f"model: {which}")
    print(f"cpu: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'path':<44} {'n':>4} {'median ms':>10} {'p95 ms':>10}")
    for name, s in results.items():
        print(f"{name:<44} {int(s['n']):>4} {s['median_ms']:>10.1f} {s['p95_ms']:>10.1f}")
    if args.json:
        args.json.write_text(json.dumps({"model": which, "results": results}, indent=2))


def stats(times: list[float]) -> dict[str, float]:
    return {
        "n": len(times),
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 0.95), 2),
    }


if __name__ == "__main__":
    main()
