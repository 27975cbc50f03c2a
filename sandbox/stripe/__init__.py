"""A stateful Stripe-compatible HTTP server for tests and local runs (the official SDK talks to it)."""

from __future__ import annotations

from .app import create_app
from .config import SandboxConfig
from .state import SandboxState

__all__ = ["SandboxConfig", "SandboxState", "create_app"]
