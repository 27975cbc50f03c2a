"""A Qonto Business API v2 compatible sandbox for local runs and tests."""

from __future__ import annotations

from sandbox.qonto.app import create_app
from sandbox.qonto.config import BankAccountConfig, QontoSandboxConfig

__all__ = ["BankAccountConfig", "QontoSandboxConfig", "create_app"]
