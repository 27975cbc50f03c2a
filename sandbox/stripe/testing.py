"""Helpers to run the sandbox in tests (in the current event loop) or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import stripe

from runtime.asgi_server import serve_asgi
from runtime.embedded_pg import free_port
from runtime.stripe_api import QuietHTTPXClient

from .app import create_app
from .config import SandboxConfig
from .state import SandboxState

API_KEY = "sk_test_sandbox"
# The publishable key the platform hands its app (the sandbox does not check it: nothing calls it).
PUBLISHABLE_KEY = "pk_test_sandbox"


@dataclass
class ConnectedAccount:
    """A connected account and SDK clients acting on it and on the platform."""

    id: str
    client: stripe.StripeClient
    platform: stripe.StripeClient


class RunningSandbox:
    """A sandbox served on 127.0.0.1 in this process."""

    def __init__(self, url: str, state: SandboxState) -> None:
        self.url = url
        self.state = state
        self._http_clients: list[QuietHTTPXClient] = []

    def client(self, stripe_account: str | None = None, api_key: str = API_KEY) -> stripe.StripeClient:
        """An official SDK client pointed at this sandbox (closed with the sandbox)."""
        http_client = QuietHTTPXClient()
        self._http_clients.append(http_client)
        return stripe.StripeClient(
            api_key,
            stripe_account=stripe_account,
            base_addresses={"api": self.url, "connect": self.url, "files": self.url},
            http_client=http_client,
            max_network_retries=0,
        )

    async def create_connected_account(self, type: str = "express", onboarded: bool = True) -> ConnectedAccount:
        """A new connected account (card_payments + transfers requested), onboarded unless told not to."""
        platform = self.client()
        account = await platform.v1.accounts.create_async(
            params={
                "type": type,
                "country": "FR",
                "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
            }
        )
        if onboarded:
            async with httpx.AsyncClient() as http:
                response = await http.post(f"{self.url}/_sandbox/accounts/{account.id}/onboard")
                response.raise_for_status()
        return ConnectedAccount(account.id, self.client(stripe_account=account.id), platform)

    async def wait_for_deliveries(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until every webhook delivery (including retries) and background payout is done."""
        if not await self.state.deliveries_idle(timeout):
            raise TimeoutError(f"webhook deliveries still pending after {timeout}s")

    def reset(self) -> None:
        """Empty the sandbox (objects, balances, events, webhook endpoints); the platform id stays."""
        self.state.reset()

    async def aclose(self) -> None:
        for http_client in self._http_clients:
            await http_client.close_async()
        self._http_clients.clear()


@asynccontextmanager
async def run_sandbox(**config_overrides: Any) -> AsyncIterator[RunningSandbox]:
    """Serve a fresh sandbox on 127.0.0.1, port 0, as a task of the running event loop."""
    app = create_app(SandboxConfig.from_env(**config_overrides))
    async with serve_asgi(app) as url:
        sandbox = RunningSandbox(url, app.state.sandbox)
        try:
            yield sandbox
        finally:
            await sandbox.aclose()


class SandboxProcess:
    """`python -m sandbox.stripe` as a subprocess on a free port; a context manager."""

    def __init__(
        self,
        port: int | None = None,
        state_file: str | os.PathLike[str] | None = None,
        log_level: str = "warning",
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_file = state_file
        self.log_level = log_level
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> SandboxProcess:
        repo_root = Path(__file__).resolve().parents[2]
        cmd = [sys.executable, "-m", "sandbox.stripe", "--port", str(self.port), "--log-level", self.log_level]
        if self.state_file:
            cmd += ["--state-file", str(self.state_file)]
        self.process = subprocess.Popen(cmd, cwd=repo_root, env={**os.environ, **(self.env or {})})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stripe sandbox exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/_sandbox/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError("stripe sandbox did not become healthy")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
