"""Signed webhook delivery with retries, duplicate / shuffle modes, and an idle signal for tests."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from runtime.webhook_signatures import sign

from .config import SandboxConfig
from .store import StripeObject

logger = logging.getLogger("sandbox.stripe.webhooks")


def endpoint_wants(endpoint: StripeObject, event: StripeObject, is_connect_event: bool) -> bool:
    if endpoint["status"] != "enabled" or bool(endpoint.get("_connect")) != is_connect_event:
        return False
    enabled = endpoint["enabled_events"]
    return "*" in enabled or event["type"] in enabled


class WebhookDispatcher:
    """Delivers events to endpoints in background tasks; `idle()` resolves when nothing is in flight."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.client: httpx.AsyncClient | None = None
        self.attempts: deque[dict[str, Any]] = deque(maxlen=2_000)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._buffer: list[tuple[StripeObject, StripeObject, bytes]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def pending(self) -> int:
        return self._pending

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=self.config.webhook_timeout_seconds)
        self._semaphore = asyncio.Semaphore(max(1, self.config.webhook_concurrency))
        self._idle = asyncio.Event()
        self._idle.set()

    async def stop(self) -> None:
        tasks = list(self._tasks)
        if self._flusher is not None:
            tasks.append(self._flusher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def idle(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every scheduled delivery (and retry) has finished; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def submit(self, event: StripeObject, endpoints: list[StripeObject]) -> None:
        if not endpoints or self.client is None:
            return
        payload = orjson.dumps(event)
        for endpoint in endpoints:
            for _ in range(max(1, self.config.webhook_duplicates)):
                self.begin()
                if self.config.webhook_shuffle:
                    self._buffer.append((endpoint, event, payload))
                else:
                    self._spawn(self._deliver(endpoint, event, payload))
        if self._buffer and self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    def run_background(self, make: Callable[[], Awaitable[None]]) -> None:
        """Run other outbound work (e.g. the Qonto credit) counted by `idle()`."""
        self.begin()

        async def wrapper() -> None:
            try:
                await make()
            finally:
                self.end()

        self._spawn(wrapper())

    def begin(self) -> None:
        self._pending += 1
        self._idle.clear()

    def end(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(self.config.webhook_shuffle_window_seconds)
        finally:
            self._flusher = None
        batch, self._buffer = self._buffer, []
        random.shuffle(batch)
        for endpoint, event, payload in batch:
            self._spawn(self._deliver(endpoint, event, payload))

    async def _deliver(self, endpoint: StripeObject, event: StripeObject, payload: bytes) -> None:
        try:
            max_attempts = max(1, self.config.webhook_max_attempts)
            for attempt in range(1, max_attempts + 1):
                if await self._attempt(endpoint, event, payload, attempt):
                    event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
                    return
                if attempt < max_attempts:
                    await asyncio.sleep(self.config.webhook_retry_base_seconds * 2 ** (attempt - 1))
            logger.warning("webhook %s to %s gave up after %d attempts", event["id"], endpoint["url"], attempt)
        finally:
            self.end()

    async def _attempt(self, endpoint: StripeObject, event: StripeObject, payload: bytes, attempt: int) -> bool:
        assert self.client is not None and self._semaphore is not None
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(payload, endpoint["_secret"], int(time.time())),
        }
        status: int | None = None
        error: str | None = None
        async with self._semaphore:
            try:
                response = await self.client.post(endpoint["url"], content=payload, headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        self.attempts.append(
            {
                "event": event["id"],
                "type": event["type"],
                "endpoint": endpoint["id"],
                "attempt": attempt,
                "status": status,
                "error": error,
                "at": time.time(),
            }
        )
        return status is not None and 200 <= status < 300
