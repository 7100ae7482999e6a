"""The systemd units: `systemd-analyze verify` passes, every hardening line says why, exposure low.

verify needs the ExecStart binary to exist: the user units get a temporary HOME with
`.local/bin/mailfilter`, the system template a copy with ExecStart pointing at the real command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
USER_UNITS = ["mailfilter.service", "mailfilter-scan.service", "mailfilter-scan.timer"]
HARDENING = re.compile(
    r"^(Protect\w+|Private\w+|Restrict\w+|NoNewPrivileges|ReadWritePaths|CapabilityBoundingSet|"
    r"AmbientCapabilities|SystemCall\w+|MemoryDenyWriteExecute|IPAddressDeny|LockPersonality|"
    r"RemoveIPC|DevicePolicy|KeyringMode|UMask|ProcSubset|LimitCORE)="
)


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return path


def mailfilter_command() -> str:
    """An existing executable to stand in for ExecStart's mailfilter."""
    return shutil.which("mailfilter") or sys.executable


def user_env(tmp_path: Path) -> dict[str, str]:
    home, run = tmp_path / "home", tmp_path / "run"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "mailfilter").symlink_to(mailfilter_command())
    run.mkdir(mode=0o700)
    return {"HOME": str(home), "XDG_RUNTIME_DIR": str(run), "PATH": "/usr/bin:/bin"}


def system_instance(tmp_path: Path) -> Path:
    text = (UNITS / "mailfilter@.service").read_text()
    unit = tmp_path / "mailfilter@alice.service"
    unit.write_text(text.replace("/usr/local/bin/mailfilter", mailfilter_command()))
    return unit


def test_the_daemon_units_are_notify_services_with_a_watchdog() -> None:
    for unit in ("mailfilter.service", "mailfilter@.service"):
        d = directives(unit)
        assert d["Type"] == ["notify"] and d["Restart"] == ["on-failure"]
        assert int(d["WatchdogSec"][0]) > 0
        assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    system = directives("mailfilter@.service")
    assert system["User"] == ["%i"] and system["ProtectSystem"] == ["strict"]
    assert system["RestrictAddressFamilies"] == ["AF_UNIX"] and system["IPAddressDeny"] == ["any"]
    assert directives("mailfilter-scan.service")["Type"] == ["oneshot"]


@pytest.mark.parametrize("unit", ["mailfilter.service", "mailfilter@.service"])
def test_every_hardening_line_carries_a_comment(unit: str) -> None:
    lines = (UNITS / unit).read_text().splitlines()
    for i, line in enumerate(lines):
        if HARDENING.match(line):
            j = i - 1
            while j >= 0 and HARDENING.match(lines[j]):  # a group under one comment
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), f"{unit}: no comment above {line!r}"


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    exe = analyze()
    env = user_env(tmp_path)
    user = subprocess.run(
        [exe, "verify", "--user", *USER_UNITS], cwd=UNITS, env=env, capture_output=True, text=True
    )
    assert user.returncode == 0 and not user.stderr.strip(), user.stderr
    system = subprocess.run(
        [exe, "verify", str(system_instance(tmp_path))], capture_output=True, text=True
    )
    assert system.returncode == 0 and not system.stderr.strip(), system.stderr


def test_the_system_unit_is_rated_safe(tmp_path: Path) -> None:
    exe = analyze()
    done = subprocess.run(
        [exe, "security", "--offline=yes", "--no-pager", str(system_instance(tmp_path))],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    if match is None:
        pytest.skip(f"systemd-analyze security --offline is not supported here: {done.stderr}")
    assert float(match.group(1)) <= 1.0, done.stdout
