"""Signed webhook deliveries with retries, like Qonto's, plus knobs for receiver tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from runtime.webhook_signatures import sign
from sandbox.qonto.models import WebhookSubscription

__all__ = ["DeliveryAttempt", "WebhookDispatcher"]

SIGNATURE_HEADER = "X-Qonto-Signature"
# Sandbox retries never wait longer than this, whatever the attempt number.
_MAX_RETRY_DELAY_SECONDS = 300.0
# With shuffling, each copy waits up to this long before its first attempt.
_SHUFFLE_WINDOW_SECONDS = 0.2

log = logging.getLogger("sandbox.qonto.webhooks")


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST to a receiver, kept for inspection through ``GET /_sandbox/webhook_deliveries``."""

    event_id: str
    subscription_id: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    at: float

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_api(self) -> dict[str, Any]:
        """JSON form."""
        return {**self.__dict__, "ok": self.ok}


class WebhookDispatcher:
    """Sends each event to every subscription in background tasks.

    A delivery fails on a non-2xx answer or a connection error and is retried with
    exponential backoff until ``max_attempts``. :meth:`idle` waits for all of it.
    """

    def __init__(
        self,
        *,
        retry_base_seconds: float,
        max_attempts: int,
        duplicates: int,
        shuffle: bool,
        timeout_seconds: float,
    ) -> None:
        self.retry_base_seconds = retry_base_seconds
        self.max_attempts = max_attempts
        self.duplicates = duplicates
        self.shuffle = shuffle
        self.timeout_seconds = timeout_seconds
        self.attempts: deque[DeliveryAttempt] = deque(maxlen=2_000)  # the latest, for the ops page and tests
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None

    def dispatch(self, subscriptions: list[WebhookSubscription], envelope: dict[str, Any]) -> None:
        """Schedule the deliveries of one event; needs a running event loop."""
        for subscription in subscriptions:
            # Each subscription sees its own id in the body, so each gets its own bytes.
            body = json.dumps({**envelope, "subscription_id": subscription.id}, separators=(",", ":"))
            for _ in range(self.duplicates):
                delay = random.uniform(0, _SHUFFLE_WINDOW_SECONDS) if self.shuffle else 0.0
                task = asyncio.get_running_loop().create_task(
                    self._deliver(subscription, envelope["id"], body.encode("utf-8"), delay)
                )
                self._tasks.add(task)
                task.add_done_callback(self._finished)
                self._idle_event().clear()

    async def idle(self) -> None:
        """Return once no delivery is pending (including ones waiting to retry)."""
        if self._tasks:
            await self._idle_event().wait()

    @property
    def pending(self) -> int:
        """Deliveries not yet finished."""
        return len(self._tasks)

    async def aclose(self) -> None:
        """Cancel whatever is still pending and close the HTTP client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _idle_event(self) -> asyncio.Event:
        # Created lazily: an Event binds to the loop that first waits on it.
        if self._idle is None:
            self._idle = asyncio.Event()
            if not self._tasks:
                self._idle.set()
        return self._idle

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery crashed", exc_info=task.exception())
        if not self._tasks:
            self._idle_event().set()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_seconds)
        return self._client

    async def _deliver(self, subscription: WebhookSubscription, event_id: str, body: bytes, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        for attempt in range(1, self.max_attempts + 1):
            # Signed at each attempt, like the real services, so retries are never stale.
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(body, subscription.secret, int(time.time())),
                "User-Agent": "qonto-sandbox-webhooks",
            }
            status_code: int | None = None
            error: str | None = None
            try:
                response = await self._http().post(subscription.url, content=body, headers=headers)
                status_code = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            record = DeliveryAttempt(
                event_id, subscription.id, subscription.url, attempt, status_code, error, time.time()
            )
            self.attempts.append(record)
            if record.ok:
                return
            if attempt < self.max_attempts:
                wait = min(self.retry_base_seconds * 2 ** (attempt - 1), _MAX_RETRY_DELAY_SECONDS)
                await asyncio.sleep(wait)
        log.warning("webhook %s to %s given up after %d attempts", event_id, subscription.url, attempt)
