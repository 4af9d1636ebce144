"""Packaged data: the model table. Loading files happens here so that ``core`` stays pure."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tokenomy.data.table import ModelTable, merge_table_data, parse_table
from tokenomy.errors import ConfigError

__all__ = ["builtin_table", "load_table", "read_table_file"]


@cache
def _builtin_data() -> dict[str, Any]:
    text = resources.files("tokenomy.data").joinpath("models.toml").read_text("utf-8")
    return tomllib.loads(text)


@cache
def builtin_table() -> ModelTable:
    """The model table shipped with tokenomy."""
    return parse_table(_builtin_data(), source="tokenomy/data/models.toml")


def read_table_file(path: Path) -> dict[str, Any]:
    """Read a user models file; a clear error for a missing or malformed file."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"models file {str(path)!r} does not exist; create it or unset it"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read models file {str(path)!r}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None


def load_table(user_file: Path | None = None) -> ModelTable:
    """The built-in table, overlaid with ``user_file`` when given (models merge by ``id``)."""
    if user_file is None:
        return builtin_table()
    user = read_table_file(user_file)
    merged = merge_table_data(_builtin_data(), user, source=str(user_file))
    table = parse_table(merged, source=str(user_file))
    # Both files shaped the result: say so (errors above name the user file, where they are).
    return replace(table, sources=(*builtin_table().sources, str(user_file)))
