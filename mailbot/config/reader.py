"""Typed access to the TOML tables of the config file: every error names the offending key."""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path
from typing import Any

from mailbot.config.schema import is_month
from mailbot.errors import ConfigError


class TomlTable:
    """Typed access to one TOML table that names the offending key in every error."""

    def __init__(self, data: dict, where: str, base: Path):
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a table")
        self.data, self.where, self.base = data, where, base

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple, default: Any = None, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise ConfigError(f"{self._key(key)} is required")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(f"{self._key(key)} must be {names}, not {type(value).__name__} {value!r}")
        return value

    def strings(self, key: str, default: list | None = None) -> list[str]:
        value = self.get(key, list, default if default is not None else [])
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self._key(key)} must be a list of strings")
        return list(value)

    def choice(self, key: str, choices: tuple, default: str | None = None, required: bool = False) -> str:
        value = self.get(key, str, default, required)
        if value not in choices:
            raise ConfigError(f"{self._key(key)} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def path(self, key: str, default: Path | None = None) -> Path | None:
        value = self.get(key, str)
        if value is None:
            return default
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.base / p)

    def month(self, key: str) -> str | None:
        value = self.get(key, str)
        if value is not None and not is_month(value):
            raise ConfigError(f"{self._key(key)} must be YYYY-MM, not {value!r}")
        return value

    def sub(self, key: str) -> "TomlTable | None":
        if key not in self.data:
            return None
        return TomlTable(self.data[key], self._key(key), self.base)

    def check_known(self, known: set[str]) -> None:
        for key in self.data:
            if key not in known:
                raise ConfigError(f"{self._key(key)} is not a known key (known: {', '.join(sorted(known))})")


def parse_time(text: str, key: str) -> time:
    try:
        hour, minute = text.split(":")
        return time(int(hour), int(minute))
    except ValueError as exc:
        raise ConfigError(f"{key} must be HH:MM, not {text!r}") from exc
