"""Everything one sandbox instance knows: objects, balances, events, idempotency, request log, faults."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .compact import Codec
from .config import SandboxConfig
from .ids import new_id
from .ledger import Ledger
from .store import Store, StripeObject
from .webhooks import WebhookDispatcher, endpoint_wants

logger = logging.getLogger("sandbox.stripe")

API_VERSION = "2020-08-27"
_IDEMPOTENCY_TTL = 24 * 3600


def exact(data: bytes) -> bytes:
    """`data` in a buffer of its own size: orjson hands back bytes in a much larger allocation
    (16 KiB for a 2 KiB PaymentIntent), which costs that much for as long as they are kept."""
    return memoryview(data).tobytes()


@dataclass(slots=True)
class IdempotentResult:
    """A remembered answer; its body packed against earlier answers (a PaymentIntent: 2.4 KB → about 0.2 KB)."""

    fingerprint: bytes
    status: int
    packed: bytes
    created: float
    codec: Codec

    @classmethod
    def of(
        cls, fingerprint: bytes, status: int, body: bytes, created: float, codec: Codec, path: str
    ) -> IdempotentResult:
        # Answers alike share a dictionary: same status, same resource (`payment_intents`).
        kind = f"{status} {path.split('/', 3)[2]}"
        return cls(exact(fingerprint), status, codec.pack_one(kind, body), created, codec)

    @property
    def body(self) -> bytes:
        return self.codec.raw_one(self.packed)


@dataclass
class Faults:
    fail_next: int = 0
    status: int = 500
    # The request is carried out (and remembered for its idempotency key), then answered with the
    # error: the answer lost after Stripe acted.
    after: bool = False


@dataclass
class RequestInfo:
    """What events created while serving one API request record in `request`."""

    id: str
    idempotency_key: str | None = None
    api_version: str | None = None


class SandboxState:
    """The sandbox's state; one per app, reachable as `app.state.sandbox`."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.live_objects)
        self.ledger = Ledger(self.store, config)
        self.webhooks = WebhookDispatcher(config)
        self.platform_id = new_id("acct", 16)
        self.idempotency: OrderedDict[tuple[str, str, str], IdempotentResult] = OrderedDict()
        self.answers = Codec()
        self.inflight: dict[tuple[str, str, str], asyncio.Future[IdempotentResult]] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        # (created, id) of events, oldest first: events beyond `event_retention` (or older than
        # `event_retention_seconds`, Stripe's 30 days) are forgotten.
        self._event_order: deque[tuple[int, str]] = deque()
        self.faults = Faults()
        self.onboarding_links: dict[str, dict[str, Any]] = {}
        self.current_request: RequestInfo | None = None
        self._rate_windows: dict[str, tuple[int, int]] = {}
        self.dirty = False
        self._timers: set[asyncio.Task[None]] = set()
        self._saver: asyncio.Task[None] | None = None
        self._snapshot_pid: int | None = None
        self._compacting = False
        self._init_platform()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.webhooks.start()
        if self.config.state_file:
            self.load(Path(self.config.state_file))
            self._saver = asyncio.get_running_loop().create_task(self._save_periodically())

    async def stop(self) -> None:
        tasks = list(self._timers)
        if self._saver is not None:
            tasks.append(self._saver)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timers.clear()
        await self.webhooks.stop()
        if self._snapshot_pid is not None:  # a copy still being written must not land after ours
            with contextlib.suppress(ChildProcessError):  # already reaped: it is done
                await asyncio.to_thread(os.waitpid, self._snapshot_pid, 0)
            self._snapshot_pid = None
        if self.config.state_file:
            self.save(Path(self.config.state_file))

    async def deliveries_idle(self, timeout: float | None = 30.0) -> bool:  # noqa: ASYNC109
        """Wait until no webhook delivery, retry or outbound credit is in flight."""
        return await self.webhooks.idle(timeout)

    def compact_soon(self) -> None:
        """Pack what is past the store's live limit once the loop is free: after the answer in hand
        is written, not before it (a batch takes a few milliseconds)."""
        if self.store.over_limit and not self._compacting:
            self._compacting = True
            asyncio.get_running_loop().call_soon(self._compact)

    def _compact(self) -> None:
        self._compacting = False
        self.store.compact()

    def later(self, delay: float, action: Any) -> None:
        """Run the sync callable `action` after `delay` seconds in a tracked background task."""

        # Counted as pending work so `deliveries_idle()` also waits for e.g. an auto-paid payout.
        self.webhooks.begin()

        async def run() -> None:
            try:
                await asyncio.sleep(delay)
                action()
                self.compact_soon()
            finally:
                self.webhooks.end()

        task = asyncio.get_running_loop().create_task(run())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def reset(self) -> None:
        """Forget every object, balance, event, endpoint and idempotency key (the platform id stays)."""
        self.store = Store(self.config.live_objects)
        self.ledger = Ledger(self.store, self.config)
        self.idempotency.clear()
        self._event_order.clear()
        self.onboarding_links.clear()
        self.requests.clear()
        self.faults = Faults()
        self._init_platform()
        self.dirty = True

    # --- accounts -------------------------------------------------------------------------------

    def _init_platform(self) -> None:
        from .resources.accounts import new_account  # resources import this module

        platform = new_account(self.platform_id, {"type": "standard", "country": "FR"}, platform=True)
        self.store.add(self.platform_id, platform)

    def account(self, account_id: str) -> StripeObject | None:
        obj = self.store.objects.get(account_id)
        return obj if obj is not None and obj["object"] == "account" else None

    def default_currency(self, account_id: str) -> str:
        account = self.account(account_id)
        return (account or {}).get("default_currency") or "eur"

    # --- events ---------------------------------------------------------------------------------

    def emit(
        self,
        account: str,
        type: str,
        obj: StripeObject,
        previous: dict[str, Any] | None = None,
    ) -> StripeObject:
        """Record an event for `account` (snapshotting `obj`) and hand it to matching endpoints."""
        is_connect = account != self.platform_id
        request = self.current_request
        # A serialized snapshot: later changes to `obj` don't alter it, and it costs one dumps.
        data: dict[str, Any] = {"object": orjson.Fragment(exact(orjson.dumps(obj)))}
        if previous:
            data["previous_attributes"] = previous
        event: StripeObject = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": (request.api_version if request else None) or API_VERSION,
            "created": int(time.time()),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": request.id, "idempotency_key": request.idempotency_key}
            if request
            else {"id": None, "idempotency_key": None},
            "type": type,
        }
        if is_connect:
            event["account"] = account
        self.store.add(account, event)
        self._retain(event)
        store = self.store
        endpoints = [
            endpoint
            for endpoint in map(store.live, store.ids(self.platform_id, "webhook_endpoint"))
            if endpoint is not None and endpoint_wants(endpoint, event, is_connect)
        ]
        if endpoints:
            event["pending_webhooks"] = len(endpoints)
            self.webhooks.submit(event, endpoints)
        self.dirty = True
        return event

    def _retain(self, event: StripeObject) -> None:
        order = self._event_order
        order.append((event["created"], event["id"]))
        cap = self.config.event_retention
        horizon = event["created"] - self.config.event_retention_seconds
        while order and (len(order) > cap or order[0][0] < horizon):
            self.store.remove(order.popleft()[1], "event")

    # --- idempotency ----------------------------------------------------------------------------

    def idempotent_result(self, key: tuple[str, str, str]) -> IdempotentResult | None:
        result = self.idempotency.get(key)
        if result is not None and time.time() - result.created > _IDEMPOTENCY_TTL:
            del self.idempotency[key]
            return None
        return result

    def rate_limited(self, account: str, per_second: int) -> bool:
        """Count a request in the account's current one-second window; True when over `per_second`."""
        window = int(time.monotonic())
        current = self._rate_windows.get(account)
        if current is None or current[0] != window:
            self._rate_windows[account] = (window, 1)
            return False
        count = current[1] + 1
        self._rate_windows[account] = (window, count)
        return count > per_second

    def inflight_future(self) -> asyncio.Future[IdempotentResult]:
        return asyncio.get_running_loop().create_future()

    def remember(self, key: tuple[str, str, str], result: IdempotentResult) -> None:
        self.idempotency[key] = result
        while len(self.idempotency) > self.config.idempotency_retention:
            self.idempotency.popitem(last=False)

    # --- persistence ----------------------------------------------------------------------------

    def _write(self, path: Path) -> None:
        """The state as one JSON document, written object by object: packed objects go out as the
        JSON they hold, never made dicts (a million of them would not fit)."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as out:
            out.write(b'{"platform_id":' + orjson.dumps(self.platform_id) + b',"objects":[')
            separator = b""
            for account, kind, raw in self.store.snapshot_json():
                out.write(separator + b"[" + orjson.dumps(account) + b"," + orjson.dumps(kind) + b"," + raw + b"]")
                separator = b","
            out.write(b'],"ledger":' + orjson.dumps(self.ledger.dump()))
            out.write(b',"onboarding_links":' + orjson.dumps(self.onboarding_links) + b"}")
        os.replace(tmp, path)

    def save(self, path: Path) -> None:
        self._write(path)
        self.dirty = False

    def load(self, path: Path) -> None:
        if not path.exists():
            return
        data = orjson.loads(path.read_bytes())
        self.store = Store(self.config.live_objects)
        self.ledger.store = self.store
        self.platform_id = data["platform_id"]
        events: list[tuple[int, str]] = []
        for owner, kind, obj in data["objects"]:
            self.store.add(owner, obj, kind)
            if kind == "event":
                events.append((obj["created"], obj["id"]))
        del data["objects"]
        self.store.relink_all()
        self._event_order = deque(sorted(events, key=lambda event: event[0]))
        self.ledger.load(data.get("ledger", {}))
        self.onboarding_links = data.get("onboarding_links", {})
        self.store.compact()
        logger.info("loaded %d objects from %s", len(self.store.objects), path)

    async def _save_periodically(self) -> None:
        assert self.config.state_file
        path = Path(self.config.state_file)
        pause = 1.0
        while True:
            await asyncio.sleep(pause)
            if self.dirty:
                self.dirty = False  # changes made while the copy is written mark it again
                started = time.monotonic()
                if not await self._save_from_a_copy(path):
                    self.dirty = True
                # The copy needs a core while it writes: at most a fortieth of the time, however large the state.
                pause = max(1.0, 40 * (time.monotonic() - started))

    async def _save_from_a_copy(self, path: Path) -> bool:
        """Writes the state from a forked copy of the process, like Redis' BGSAVE: serialising
        thousands of objects in the server's own loop stalled every request in flight (p99 of
        payment creation in bench/bench_payments.py went from 41 to 101 ms)."""
        pid = os.fork()
        if pid == 0:  # the child: a frozen copy of the state; no cleanup, no logging
            code = 0
            try:
                self._write(path)
            except BaseException:  # reported through the exit code
                code = 1
            os._exit(code)
        self._snapshot_pid = pid  # stays set if cancelled: stop() waits for the copy
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        self._snapshot_pid = None
        if os.waitstatus_to_exitcode(status) != 0:
            logger.error("saving state to %s failed", path)
            return False
        return True
