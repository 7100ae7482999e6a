"""Settings: defaults < TOML file < MAILFILTER_* env < flags; `config show` says which won."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mailfilter.cli import main
from mailfilter.settings import SettingsError, explain_settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No MAILFILTER_* from the caller; XDG dirs in the temp dir (no user config file)."""
    for var in list(os.environ):
        if var.upper().startswith("MAILFILTER_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["mailfilter", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0)


def test_each_source_overrides_the_one_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        tmp_path, 'action = "tag"\nbatch_window = 2.5\nthreshold = 0.7\nmax_size = 4096\n'
    )
    monkeypatch.setenv("MAILFILTER_THRESHOLD", "0.8")
    monkeypatch.setenv("MAILFILTER_MAX_SIZE", "8192")
    settings, path, rows = explain_settings(config, max_size=16384)
    assert path == config
    assert (settings.batch_size, settings.action, settings.threshold, settings.max_size) == (
        None, "tag", 0.8, 16384,
    )  # fmt: skip
    source = {r.key: r.source for r in rows}
    assert source["batch_size"] == "default"
    assert source["action"] == f"file {config}"
    assert source["batch_window"] == f"file {config}"
    assert source["threshold"] == "env MAILFILTER_THRESHOLD"
    assert source["max_size"] == "flag --max-size"


def test_the_xdg_config_file_is_used_when_none_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "config" / "mailfilter" / "config.toml"
    xdg.parent.mkdir(parents=True)
    xdg.write_text('socket_path = "/run/x/mf.sock"\nstrict = true\n')
    settings, path, rows = explain_settings(None)
    assert path == xdg and settings.strict and settings.socket_path == Path("/run/x/mf.sock")
    assert {r.key: r.source for r in rows}["strict"] == f"file {xdg}"


def test_config_show_prints_every_value_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, 'action = "move"\nmailboxes = ["/srv/mail/Maildir"]\n')
    monkeypatch.setenv("MAILFILTER_BATCH_WINDOW", "0.25")
    assert run_main(monkeypatch, "--config", str(config), "config", "show") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"# config file: {config}"
    by_key = {line.split(" = ")[0]: line for line in lines[1:]}
    assert by_key["action"].endswith(f"# file {config}") and '"move"' in by_key["action"]
    assert '["/srv/mail/Maildir"]' in by_key["mailboxes"]
    assert by_key["batch_window"].endswith("# env MAILFILTER_BATCH_WINDOW")
    assert by_key["max_size"].endswith("# default")

    assert run_main(monkeypatch, "--config", str(config), "config", "show", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["batch_window"] == {
        "value": 0.25,
        "source": "env MAILFILTER_BATCH_WINDOW",
    }


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("threshold = 1.5\n", {}, "invalid setting threshold (from file {config})"),
        ("batch_sise = 3\n", {}, "invalid setting batch_sise (from file {config})"),
        ('action = "delete"\n', {}, "invalid setting action (from file {config})"),
        ("action = [\n", {}, "cannot read config file {config}"),
        ("", {"MAILFILTER_MAX_SIZE": "big"}, "invalid setting max_size (from env MAILFILTER"),
        ("", {"MAILFILTER_MAILBOXES": "~/Maildir"}, "invalid setting mailboxes (from env"),
    ],
)
def test_a_bad_file_or_value_is_one_line_naming_the_key_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    env: dict[str, str],
    expected: str,
) -> None:
    config = write_config(tmp_path, text)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError):
        load_settings(config)
    assert run_main(monkeypatch, "--config", str(config), "config", "show") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("mailfilter: error: " + expected.format(config=config)), err


def test_a_missing_config_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    assert run_main(monkeypatch, "--config", str(missing), "config", "show") == 2
    assert capsys.readouterr().err == f"mailfilter: error: config file not found: {missing}\n"
