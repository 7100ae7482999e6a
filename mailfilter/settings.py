"""Settings: defaults < TOML file < MAILFILTER_* environment < CLI flags.

Built once in the CLI callback and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
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
    batch_size: int = Field(32, ge=1, le=4096, description="messages per model batch")
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
    max_size: int = Field(
        512 * 1024, ge=1024, description="messages larger than this (bytes) are not rewritten"
    )
    state_path: Path | None = Field(None, description="SQLite state DB path")
    mailboxes: list[Path] = Field(default_factory=list, description="mailboxes the daemon watches")
    batch_window: float = Field(1.0, ge=0.0, le=60.0, description="seconds to gather arrivals")
    socket_path: Path | None = Field(None, description="daemon socket path")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

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


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the TOML file (explicit, or the XDG default if present), env, flags."""
    path = config_path
    if path is None:
        candidate = default_config_path()
        path = candidate if candidate.is_file() else None
    elif not path.is_file():
        raise SettingsError(f"config file not found: {path}")
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
        where = f" in {path}" if path else ""
        raise SettingsError(f"invalid setting {key}{where}: {err['msg']}") from e
    except (OSError, ValueError) as e:  # unparsable TOML
        raise SettingsError(f"cannot read config file {path}: {e}") from e
