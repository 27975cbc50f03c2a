"""A Pennylane Company API v2 compatible sandbox (ledger entries, journals, ledger accounts, customers, customer invoices)."""

from __future__ import annotations

from sandbox.pennylane.app import create_app
from sandbox.pennylane.config import CompanyConfig, PennylaneSandboxConfig

__all__ = ["CompanyConfig", "PennylaneSandboxConfig", "create_app"]
