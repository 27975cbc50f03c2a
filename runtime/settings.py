"""Settings read once from the environment; a missing required one stops start-up with one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


class SettingsError(Exception):
    """A setting is missing or malformed."""


class Env:
    """Typed reads over an environment mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def text(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise SettingsError(f"missing required setting {name}")
        return default

    def optional(self, name: str) -> str | None:
        return self._environ.get(name, "").strip() or None

    def integer(self, name: str, default: int) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"setting {name} must be an integer, got {raw!r}") from None

    def number(self, name: str, default: float) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"setting {name} must be a number, got {raw!r}") from None

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"setting {name} must be true or false, got {raw!r}")


def exit_on_settings_error(error: SettingsError) -> None:
    """Prints the one clear line and exits with status 2."""
    print(f"configuration error: {error}", file=sys.stderr)
    raise SystemExit(2)
