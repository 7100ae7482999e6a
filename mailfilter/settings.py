"""Settings: defaults < TOML file < MAILFILTER_* environment < CLI flags.

Built once in the CLI callback and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Action = Literal["none", "tag", "move"]
Device = Literal["auto", "cpu", "cuda"]


class SettingsError(Exception):
    """A config file or value is invalid; the message names the key."""


def xdg_dir(var: str, fallback: str) -> Path:
    """An XDG base directory, from its variable or the spec's fallback under $HOME."""
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_config_path() -> Path:
    """`$XDG_CONFIG_HOME/mailfilter/config.toml`."""
    return xdg_dir("XDG_CONFIG_HOME", ".config") / "mailfilter" / "config.toml"


class Settings(BaseSettings):
    """Everything a user can configure."""

    model_config = SettingsConfigDict(
        env_prefix="MAILFILTER_", extra="forbid", validate_default=True
    )

    checkpoint: Path | None = Field(None, description="model file; the bundled model when unset")
    device: Device = Field("auto", description="auto picks CUDA when present, else CPU")
    threads: int | None = Field(None, ge=1, description="CPU threads for the model")
    workers: int | None = Field(
        None, ge=1, le=64,
        description="processes scoring a large scan on the CPU (default: one per core, at most "
        "8 and at most `threads`; 1: score in the scanning process)",
    )
    batch_size: int | None = Field(
        None, ge=1, le=4096,
        description="messages per model batch (default: 8 on the CPU, where small batches keep "
        "the attention in cache, 256 on a GPU)",
    )
    action: Action = Field("none", description="what to do with spam: none (report), tag, move")
    spam_folder: str = Field(".Junk", min_length=1, description="Maildir++ spam folder name")
    spam_mbox: Path | None = Field(
        None, description="mbox that spam moves to (default: <mbox>.spam)"
    )
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="p(spam) at or above which a message is spam"
    )
    unsure_band: float = Field(
        0.0, ge=0.0, le=0.5, description="scores within this of the threshold are 'unsure'"
    )
    subject_prefix: str | None = Field(None, description="prefix added to spam subjects on tag")
    welcomelist_from: list[str] = Field(
        default_factory=list,
        description="senders never marked spam: addresses or patterns matched against From: "
        "(ann@example.org, *@example.org); From: can be forged, so list people and small "
        "domains, never a free-mail provider",
    )
    max_size: int = Field(
        512 * 1024, ge=1024, description="messages larger than this (bytes) are not rewritten"
    )
    state_path: Path | None = Field(None, description="SQLite state DB path")
    mailboxes: list[Path] = Field(default_factory=list, description="mailboxes the daemon watches")
    batch_window: float = Field(1.0, ge=0.0, le=60.0, description="seconds to gather arrivals")
    socket_path: Path | None = Field(
        None, description="daemon socket (default $XDG_RUNTIME_DIR/mailfilter/mailfilter.sock)"
    )
    strict: bool = Field(
        False, description="filter/client: exit 75 (EX_TEMPFAIL) on errors, not fail open"
    )
    watch: bool = Field(True, description="daemon: watch the mailboxes (off: socket only)")
    startup_scan: bool = Field(True, description="daemon: scan the mailboxes when it starts")
    client_timeout: float = Field(
        30.0, gt=0.0, le=600.0, description="seconds the client waits for the daemon's answer"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @field_validator("welcomelist_from")
    @classmethod
    def _welcomelist_patterns(cls, entries: list[str]) -> list[str]:
        from mailfilter.welcomelist import check_pattern

        return [check_pattern(e) for e in entries]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """CLI flags (init) > environment > TOML file > defaults."""
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def resolved_state_path(self) -> Path:
        """The state DB path, defaulting under `$XDG_STATE_HOME/mailfilter/`."""
        if self.state_path is not None:
            return self.state_path
        return xdg_dir("XDG_STATE_HOME", ".local/state") / "mailfilter" / "state.sqlite3"


def resolve_config_path(config_path: Path | None) -> Path | None:
    """The config file in use: the one given (which must exist), else the XDG default if present."""
    if config_path is None:
        candidate = default_config_path()
        return candidate if candidate.is_file() else None
    if not config_path.is_file():
        raise SettingsError(f"config file not found: {config_path}")
    return config_path


def _env_vars() -> dict[str, str]:
    """Field name -> the MAILFILTER_* variable that sets it (matched case-insensitively)."""
    prefix = "MAILFILTER_"
    fields = set(Settings.model_fields)
    out: dict[str, str] = {}
    for var in os.environ:
        if var.upper().startswith(prefix) and var[len(prefix) :].lower() in fields:
            out[var[len(prefix) :].lower()] = var
    return out


def _file_keys(path: Path | None) -> set[str]:
    if path is None:
        return set()
    try:
        with open(path, "rb") as f:
            return set(tomllib.load(f))
    except (OSError, ValueError):
        return set()


def _source_of(key: str, path: Path | None, flags: dict[str, Any]) -> str:
    """Where a setting's value comes from: flag, env var, config file or default."""
    if key in flags:
        return f"flag --{key.replace('_', '-')}"
    env = _env_vars()
    if key in env:
        return f"env {env[key]}"
    if key in _file_keys(path):
        return f"file {path}"
    return "default"


@dataclass(frozen=True)
class SettingSource:
    """One effective setting and where its value came from."""

    key: str
    value: Any
    source: str  # "default", "file <path>", "env MAILFILTER_X" or "flag --x"


def explain_settings(
    config_path: Path | None = None, **overrides: Any
) -> tuple[Settings, Path | None, list[SettingSource]]:
    """The effective settings, the config file used, and each value's source."""
    path = resolve_config_path(config_path)
    flags = {k: v for k, v in overrides.items() if v is not None}
    settings = load_settings(config_path, **overrides)
    rows = [
        SettingSource(key, getattr(settings, key), _source_of(key, path, flags))
        for key in Settings.model_fields
    ]
    return settings, path, rows


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the TOML file (explicit, or the XDG default if present), env, flags."""
    path = resolve_config_path(config_path)
    flags = {k: v for k, v in overrides.items() if v is not None}
    cls: type[Settings] = Settings
    if path is not None:
        config = {**Settings.model_config, "toml_file": path}
        cls = type("FileSettings", (Settings,), {"model_config": config})
    try:
        return cls(**flags)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "?"
        top = str(err["loc"][0]) if err["loc"] else ""
        known = top in Settings.model_fields or top in _file_keys(path)
        where = f" (from {_source_of(top, path, flags)})" if known else ""
        raise SettingsError(f"invalid setting {key}{where}: {_one_line(err['msg'])}") from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"cannot read config file {path}: {_one_line(str(e))}") from e
    except OSError as e:
        raise SettingsError(f"cannot read config file {path}: {e.strerror or e}") from e
    except ValueError as e:  # pydantic-settings: an env value that is not valid JSON, ...
        named = re.search(r'field "(\w+)"', str(e))
        if named and named.group(1) in Settings.model_fields:
            key = named.group(1)
            source = _source_of(key, path, flags)
            raise SettingsError(
                f"invalid setting {key} (from {source}): not a valid value (lists are JSON there,"
                ' e.g. ["~/Maildir"])'
            ) from e
        raise SettingsError(f"invalid setting: {_one_line(str(e))}") from e


def _one_line(text: str) -> str:
    return " ".join(text.split())
