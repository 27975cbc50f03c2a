"""Run the Pennylane sandbox inside a test's event loop.

Usage::

    async with run_pennylane_sandbox(rate_limit=5) as pl:
        company = pl.add_company("Org A")
        ...
        entries = pl.entries(company)
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.applications import Starlette

from runtime.asgi_server import EmbeddedServer
from sandbox.pennylane.app import API, create_app
from sandbox.pennylane.config import CompanyConfig, PennylaneSandboxConfig
from sandbox.pennylane.state import Company, CreateGate, SandboxState

__all__ = ["RunningPennylaneSandbox", "run_pennylane_sandbox"]


class RunningPennylaneSandbox:
    """Handle on a sandbox served on 127.0.0.1; direct calls skip HTTP."""

    def __init__(self, app: Starlette, url: str) -> None:
        self.app = app
        self.url = url

    @property
    def api_base(self) -> str:
        """What a client is configured with (`PENNYLANE_API_BASE`): the server, without the API path."""
        return self.url

    @property
    def api_url(self) -> str:
        return f"{self.url}{API}"

    @property
    def state(self) -> SandboxState:
        state: SandboxState = self.app.state.sandbox
        return state

    def add_company(self, name: str = "Company") -> Company:
        """A new company with its own token and the default journals and chart of accounts."""
        return self.state.add_company(CompanyConfig(name, f"pl_{secrets.token_urlsafe(18)}"))

    def entries(self, company: Company) -> list[dict[str, Any]]:
        """The company's ledger entries, oldest first."""
        return [company.entries[k] for k in sorted(company.entries)]

    def inject_faults(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Make the next ``count`` API requests answer ``status`` (429 carries ``retry-after``)."""
        self.state.faults.add(status, count, retry_after)

    def invoices(self, company: Company) -> list[dict[str, Any]]:
        """The company's customer invoices and credit notes, oldest first."""
        return [company.invoices[k] for k in sorted(company.invoices)]

    def lose_answers(self, status: int = 503, count: int = 1) -> None:
        """The next ``count`` creations (ledger entries, customers, invoices) are stored, then answered ``status``."""
        self.state.lost_answers.extend([status] * count)

    @contextlib.contextmanager
    def holding_creations(self, path: str | None = None) -> Iterator[CreateGate]:
        """While inside, a creation (at ``path`` only, e.g. ``"/customer_invoices"``, when named) is stored,
        sets ``gate.committed`` and waits for ``gate.release`` before answering (released on exit)."""
        gate = CreateGate(path=path)
        self.state.gate = gate
        try:
            yield gate
        finally:
            self.state.gate = None
            gate.release.set()

    def reset(self) -> None:
        self.state.reset()


@contextlib.asynccontextmanager
async def run_pennylane_sandbox(**overrides: Any) -> AsyncIterator[RunningPennylaneSandbox]:
    """Serve a fresh sandbox (``PennylaneSandboxConfig(**overrides)``) on a free local port."""
    app = create_app(PennylaneSandboxConfig(**overrides))
    server = EmbeddedServer(app)
    await server.start()
    try:
        yield RunningPennylaneSandbox(app, server.url)
    finally:
        await server.stop()
