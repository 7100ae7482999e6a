"""SpamAssassin: rules plus a Bayes database trained by `sa-learn`, scored by `spamd` + `spamc`.

Everything lives in a private directory: a site config (Debian's `*.pre` plugin list and site
rules from /etc/spamassassin, our own local.cf), the Bayes database, spamd's log. Network tests
are off (`-L`, no RBL, Razor, Pyzor, DCC) and nothing is learned while scoring. spamd listens on
a free loopback port with a fixed number of children; several spamc clients keep them busy.
When run as root, spamd would drop to `nobody` anyway, so the directory is handed to it.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.peerlib.peer import Peer, PeerError, PeerScore, chunks, run_tool

log = logging.getLogger(__name__)

SITE_CONFIG = Path("/etc/spamassassin")
PACKAGE_RULES = Path("/usr/share/spamassassin")
UPDATED_RULES = Path("/var/lib/spamassassin")
BAYES_MIN = 200  # SpamAssassin ignores Bayes until it has learned this many ham and spam
SPAMD_READY_S = 300.0
UNPRIVILEGED = "nobody"
SUMMARY = re.compile(r"^(-?[0-9.]+)/(-?[0-9.]+)\s*$")
LOCAL_CF = """\
# Written by bench/peers.py: Bayes learns only from sa-learn; no network tests.
use_bayes 1
bayes_auto_learn 0
bayes_auto_expire 0
bayes_path {bayes_path}
skip_rbl_checks 1
dns_available no
ifplugin Mail::SpamAssassin::Plugin::Razor2
use_razor2 0
endif
ifplugin Mail::SpamAssassin::Plugin::Pyzor
use_pyzor 0
endif
ifplugin Mail::SpamAssassin::Plugin::DCC
use_dcc 0
endif
"""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rules_in_use() -> str:
    """Which rule set SpamAssassin will load: sa-update's, the package's, or none."""
    updated = sorted(UPDATED_RULES.glob("*/updates_spamassassin_org/*.cf"))
    if updated:
        return f"sa-update rules in {updated[0].parent} ({len(updated)} files)"
    shipped = sorted(PACKAGE_RULES.glob("*.cf"))
    if shipped:
        return (f"the package's rules in {PACKAGE_RULES} ({len(shipped)} files; "
                "no sa-update, which cannot run offline)")
    return "NO rules installed (sa-update cannot run offline): Bayes and built-in tests only"


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for path in root.rglob("*"):
        os.chown(path, uid, gid, follow_symlinks=False)


class SpamAssassin(Peer):
    """SpamAssassin 4 through spamd/spamc, with a private site config and Bayes database."""

    name = "SpamAssassin"
    programs = ("spamd", "spamc", "sa-learn")

    def __init__(self, workdir: Path, children: int = 2, clients: int | None = None) -> None:
        super().__init__(workdir)
        self.home = workdir / "spamassassin"
        self.site = self.home / "site"
        self.prefs = self.home / "user_prefs"
        self.log_path = self.home / "spamd.log"
        self.children = children
        self.clients = clients or children + 1
        self.port = 0
        self._spamd: subprocess.Popen[bytes] | None = None
        self._user = pwd.getpwnam(UNPRIVILEGED) if os.geteuid() == 0 else None

    def version(self) -> str:
        """`SpamAssassin Server version 4.0.1`."""
        return run_tool(["spamd", "--version"]).splitlines()[0].strip()

    def settings(self) -> str:
        """Threshold, options and rules."""
        return (f"spam at score ≥ 5.0 (required_score); `spamd -L`, {self.children} children, "
                f"{self.clients} parallel spamc clients; Bayes from sa-learn only; "
                f"{rules_in_use()}")

    def _write_config(self) -> None:
        self.site.mkdir(parents=True, exist_ok=True)
        (self.home / "bayes").mkdir(exist_ok=True)
        if SITE_CONFIG.is_dir():
            for src in sorted(SITE_CONFIG.iterdir()):
                if src.suffix in (".pre", ".cf") and src.name != "local.cf" and src.is_file():
                    shutil.copy(src, self.site / src.name)
        else:
            log.warning("SpamAssassin: %s is absent; running without its plugin list",
                        SITE_CONFIG)
        (self.site / "local.cf").write_text(LOCAL_CF.format(bayes_path=self.home / "bayes" /
                                                            "bayes"))
        self.prefs.write_text("")

    def _sa_learn(self, *args: str | Path) -> str:
        env = {**os.environ, "HOME": str(self.home)}
        return run_tool(["sa-learn", "-L", "--siteconfigpath", self.site, "-p", self.prefs,
                         *args], env=env)

    def train(self, ham: Sequence[Path], spam: Sequence[Path]) -> None:
        """`sa-learn --ham` / `--spam` every file, then sync the journal once."""
        self._write_config()
        for flag, files in (("--ham", ham), ("--spam", spam)):
            for part in chunks(files):
                self._sa_learn(flag, "--no-sync", *part)
        self._sa_learn("--sync")
        magic = self._sa_learn("--dump", "magic")
        learned = {name: int(n) for n, name in
                   re.findall(r"(\d+)\s+0\s+non-token data: (nham|nspam)\b", magic)}
        log.info("SpamAssassin: Bayes learned %s", learned or magic.strip()[:200])
        if min(learned.get("nham", 0), learned.get("nspam", 0)) < BAYES_MIN:
            log.warning("SpamAssassin: Bayes needs %d ham and %d spam to be used; it has %s",
                        BAYES_MIN, BAYES_MIN, learned)

    def start(self) -> None:
        """Start spamd on a free loopback port and wait until a child answers a ping."""
        if self._user is not None:  # spamd's children run as nobody: let them in
            _chown_tree(self.home, self._user.pw_uid, self._user.pw_gid)
            self.workdir.chmod(self.workdir.stat().st_mode | 0o111)
        self.port = free_port()
        cmd = ["spamd", "-x", "-L", "--siteconfigpath", str(self.site),
               "--listen", f"127.0.0.1:{self.port}", "--max-children", str(self.children),
               "--min-children", str(self.children), "--min-spare", str(self.children),
               "--max-spare", str(self.children), "--syslog=stderr", "-H", str(self.home)]
        if self._user is not None:
            cmd += ["-u", self._user.pw_name]
        log.info("SpamAssassin: starting spamd on 127.0.0.1:%d", self.port)
        with self.log_path.open("wb") as out:
            self._spamd = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True,
                                           env={**os.environ, "HOME": str(self.home)})
        started = time.perf_counter()
        while time.perf_counter() - started < SPAMD_READY_S:
            if self._spamd.poll() is not None:
                raise PeerError(f"spamd exited with {self._spamd.returncode}: {self._log_tail()}")
            ping = subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(self.port), "-K"],
                                  capture_output=True, check=False)
            if ping.returncode == 0 and ping.stdout.startswith(b"SPAMD/"):  # a child answered
                log.info("SpamAssassin: spamd ready in %.0f s", time.perf_counter() - started)
                return
            time.sleep(1.0)
        raise PeerError(f"spamd not ready after {SPAMD_READY_S:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:]
        except OSError:
            return "(no log)"

    def _spamc(self, file: Path) -> PeerScore:
        cmd = ["spamc", "-d", "127.0.0.1", "-p", str(self.port), "-c", "-x"]
        try:
            out = run_tool(cmd, stdin=file.read_bytes(), ok_codes=(0, 1))
        except PeerError as e:  # one retry: a child being respawned can drop a connection
            log.warning("SpamAssassin: %s: %s; retrying once", file.name, e)
            out = run_tool(cmd, stdin=file.read_bytes(), ok_codes=(0, 1))
        m = SUMMARY.match(out.strip())
        if m is None:
            raise PeerError(f"spamc printed {out.strip()!r} for {file}")
        score, required = float(m.group(1)), float(m.group(2))
        if required == 0:  # spamc passed the message through unscanned (over its size limit)
            log.warning("SpamAssassin: %s not scanned (spamc size limit); scored 0", file.name)
        return PeerScore(score, required > 0 and score >= required)

    def score(self, files: Sequence[Path]) -> list[PeerScore]:
        """Score each file through spamc, `clients` at a time."""
        if self._spamd is None:
            raise PeerError("spamd is not running: call start() first")
        with ThreadPoolExecutor(self.clients) as pool:
            scores = list(pool.map(self._spamc, files))
        self._check_bayes_used()
        return scores

    def _check_bayes_used(self) -> None:
        try:
            results = [line for line in self.log_path.read_text(errors="replace").splitlines()
                       if "spamd: result:" in line]
        except OSError:
            return
        with_bayes = sum("BAYES_" in line for line in results)
        log.info("SpamAssassin: a Bayes rule fired on %d of %d scanned messages", with_bayes,
                 len(results))
        if results and not with_bayes:
            log.warning("SpamAssassin: Bayes was never used: %s", self._log_tail())

    def close(self) -> None:
        """Stop spamd and its children (they share the session spamd was started in)."""
        proc, self._spamd = self._spamd, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.warning("SpamAssassin: spamd ignored SIGTERM; killing it")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
