"""Settings: defaults < config file < environment < flags. The only reader of ``os.environ``.

Every other module takes a :class:`Settings` (or the single value it needs) as an argument.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tokenomy.errors import ConfigError

__all__ = ["ENV_VARS", "Settings", "load_settings"]

APP = "tokenomy"
DEFAULT_UPSTREAM = "https://api.anthropic.com"

# environment variable -> settings field
ENV_VARS: dict[str, str] = {
    "TOKENOMY_DATA_DIR": "data_dir",
    "TOKENOMY_DB": "db_url",
    "TOKENOMY_MODELS_FILE": "models_file",
    "TOKENOMY_UPSTREAM": "upstream_url",
    "TOKENOMY_REDIS": "redis_url",
    "TOKENOMY_MODE": "mode",
    "TOKENOMY_OFFLINE": "offline",
    "TOKENOMY_UPSTREAM_API_KEY": "upstream_api_key",
    "ANTHROPIC_AUTH_TOKEN": "anthropic_api_key",  # the SDKs' bearer token …
    "ANTHROPIC_API_KEY": "anthropic_api_key",  # … the key wins when both are set
    "CLAUDE_CONFIG_DIR": "claude_config_dir",
}


class Settings(BaseModel):
    """Everything configurable. All fields have defaults; see ``docs/configuration.md``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP)))
    config_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_config_dir(APP)))
    db_url: str | None = None
    models_file: Path | None = None
    upstream_url: str = DEFAULT_UPSTREAM
    redis_url: str | None = None
    mode: Literal["optimize", "observe"] = "optimize"
    # Refuse any upstream that is not on this machine (tests, demos, CI).
    offline: bool = False
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8787
    emulator_host: str = "127.0.0.1"
    emulator_port: int = 8788
    ledger_batch_rows: int = Field(default=200, ge=1)
    ledger_flush_interval_s: float = Field(default=0.25, gt=0)
    ledger_queue_max_rows: int = Field(default=10_000, ge=1)
    # Keys are held as secrets (never printed, logged or stored; a fingerprint is kept instead).
    anthropic_api_key: SecretStr | None = None
    # the key the gateway sends upstream for clients that authenticate with a gateway key
    upstream_api_key: SecretStr | None = None
    # Claude Code's config folders (one path or a comma-separated list), as CLAUDE_CONFIG_DIR
    claude_config_dir: str | None = None

    def api_key(self) -> str | None:
        """The Anthropic API key from the environment, revealed only to the code that sends it."""
        return self.anthropic_api_key.get_secret_value() if self.anthropic_api_key else None

    @property
    def ledger_url(self) -> str:
        """The ledger database URL: ``db_url`` or a SQLite file in the data dir."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def user_models_file(self) -> Path | None:
        """The user's models file: the configured one, else ``<config_dir>/models.toml``."""
        if self.models_file is not None:
            return self.models_file
        default = self.config_dir / "models.toml"
        return default if default.is_file() else None


def load_settings(
    *,
    flags: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, the config file, the environment and flags (later wins).

    ``config_file`` defaults to ``$TOKENOMY_CONFIG`` or ``<config_dir>/config.toml`` when present.
    Flags whose value is None are ignored, so CLI options can be passed through unconditionally.
    """
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    path = config_file or (Path(env["TOKENOMY_CONFIG"]) if env.get("TOKENOMY_CONFIG") else None)
    if path is None:
        default = Path(platformdirs.user_config_dir(APP)) / "config.toml"
        path = default if default.is_file() else None
    if path is not None:
        merged.update(_read_config(path))
    for var, key in ENV_VARS.items():
        value = env.get(var)
        if value:
            merged[key] = value
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"setting {field!r}: {first['msg']} (got {first.get('input')!r}); "
            "fix it in the config file, the environment or the flag"
        ) from None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
    section = data.get("tokenomy", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: expected a [tokenomy] table")
    return section
