"""A mixed load on a running platform, as agents and Stripe produce it, and what must hold afterwards.

Sales: `POST /v1/payments` with an Idempotency-Key (automatic or manual capture), confirmed at the
Stripe sandbox as the phone would, captured through the gateway when manual, some refunded through the
gateway (Idempotency-Key) once Stripe's webhook made them succeeded; offline batches of cash sales.
Every request is retried with the same key (or local ids) until it succeeds, as a client would through
a crash: what clients saw on the way is tallied. Used by the chaos test (tests/e2e/test_chaos.py),
bench/bench_chaos.py and bench/bench_soak.py.

`verify` checks the invariants: every sale completed, exactly one PaymentIntent per key at the
sandbox, each payment's state and refunds equal to Stripe's, every inbox drained, stats equal to the
payments made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from runtime.config import SERVICES

# What a client retries after: the platform (or a part of it) is briefly unavailable.
RETRIED_STATUSES = {502, 503, 504}
PASSWORD = "mixed-load-password-1"
# The stack's settings under this load: one agent sells far more than the per-member limit allows.
CHAOS_ENV = {"PAYMENT_RATE_LIMIT_PER_MINUTE": "0"}


class UnexpectedAnswer(AssertionError):
    pass


@dataclass
class Sale:
    key: str
    amount: int
    manual: bool
    refund: int
    payment_id: str = ""
    intent_id: str = ""
    done: bool = False


@dataclass
class Tally:
    """Operations completed and what clients saw on the way (non-success answers, broken connections)."""

    completed: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def errors(self) -> int:
        return sum(self.seen.values())


@dataclass
class Organisation:
    id: str
    account: str
    admin: dict[str, str]  # the organisation's own admin (refunds, reads, stats)
    agent: dict[str, str]


class MixedLoad:
    def __init__(self, gateways: list[str], stripe: str, admin_email: str, admin_password: str) -> None:
        self.gateways = gateways
        self.stripe = stripe
        self._admin_login = (admin_email, admin_password)
        self.tally = Tally()
        self.sales: list[Sale] = []
        self.cash: dict[str, int] = {}
        self.org: Organisation | None = None
        self._clients: list[httpx.AsyncClient] = []
        self._turn = 0

    async def __aenter__(self) -> MixedLoad:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self._clients = [httpx.AsyncClient(base_url=g, timeout=15, limits=limits) for g in self.gateways]
        self._sandbox = httpx.AsyncClient(base_url=self.stripe, timeout=15, auth=("sk_test_sandbox", ""))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in [*self._clients, self._sandbox]:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        self._turn += 1
        return self._clients[self._turn % len(self._clients)]

    # ---- requests retried until they succeed -------------------------------------------------

    async def _until(
        self, kind: str, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]], ok: tuple[int, ...]
    ) -> httpx.Response:
        """Sends until an answer in `ok`; a retriable answer or a broken connection is tallied and retried."""
        while True:
            started = time.perf_counter()
            try:
                answer = await send(self._http())
            except httpx.TransportError as error:
                self.tally.seen[f"{kind}: {type(error).__name__}"] += 1
                await asyncio.sleep(0.2)
                continue
            if answer.status_code in ok:
                self.tally.completed[kind] += 1
                self.tally.latencies.append(time.perf_counter() - started)
                return answer
            code = _code(answer)
            hint = "" if answer.status_code != 503 or "Retry-After" in answer.headers else " (no Retry-After)"
            self.tally.seen[f"{kind}: {answer.status_code} {code}{hint}"] += 1
            if answer.status_code in RETRIED_STATUSES or answer.status_code == 429:
                await asyncio.sleep(min(2.0, float(answer.headers.get("Retry-After", "0.2"))))
                continue
            raise UnexpectedAnswer(f"{kind}: {answer.status_code} {answer.text[:300]}")

    async def _sandbox_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The sandbox plays Stripe: a broken connection (when it is restarted) is retried."""
        while True:
            try:
                return await self._sandbox.request(method, path, **kwargs)
            except httpx.TransportError as error:
                self.tally.seen[f"sandbox: {type(error).__name__}"] += 1
                await asyncio.sleep(0.2)

    # ---- set-up --------------------------------------------------------------------------------

    async def configure_sandbox(self, **values: object) -> None:
        """Changes the Stripe sandbox's settings (e.g. a shorter webhook retry backoff)."""
        answer = await self._sandbox_call("POST", "/_sandbox/config", json=values)
        answer.raise_for_status()

    async def setup(self) -> Organisation:
        """An onboarded organisation (direct charges) and an agent, through the gateway."""
        email, password = self._admin_login
        admin = await self._token(email, password)
        tag = uuid.uuid4().hex[:8]
        body = {
            "name": f"Load {tag}",
            "email": f"load-{tag}@example.test",
            "country": "FR",
            "business_type": "non_profit",
            "address": {"line1": "1 rue de la Paix", "city": "Lyon", "postal_code": "69001"},
        }
        org = (
            await self._until("setup", lambda h: h.post("/v1/organizations", headers=admin, json=body), (201,))
        ).json()
        path = f"/v1/organizations/{org['id']}"
        account = await self._until("setup", lambda h: h.post(f"{path}/stripe-account", headers=admin, json={}), (200,))
        links = {"return_url": "https://load.test/done", "refresh_url": "https://load.test/again"}
        link = await self._until(
            "setup", lambda h: h.post(f"{path}/onboarding-link", headers=admin, json=links), (200,)
        )
        async with httpx.AsyncClient(timeout=15) as plain:
            await plain.get(link.json()["url"], follow_redirects=False)
        await self._until("setup", lambda h: h.get(f"{path}/stripe-account?refresh=true", headers=admin), (200,))
        tokens = []
        for role in ("org_admin", "agent"):
            login = f"{role.replace('_', '-')}-{tag}@example.test"
            member = {"email": login, "name": role, "role": role, "password": PASSWORD}
            await self._until("setup", lambda h: h.post(f"{path}/members", headers=admin, json=member), (201,))  # noqa: B023
            tokens.append(await self._token(login, PASSWORD))
        self.org = Organisation(org["id"], account.json()["stripe_account_id"], *tokens)
        return self.org

    async def _token(self, email: str, password: str) -> dict[str, str]:
        body = {"email": email, "password": password}
        answer = await self._until("login", lambda h: h.post("/v1/auth/token", json=body), (200,))
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    # ---- the load ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, sellers: int = 6, batchers: int = 1) -> None:
        """Sellers and offline batchers until `stop` is set; each finishes what it started."""

        async def seller() -> None:
            while not stop.is_set():
                await self.sell()

        async def batcher() -> None:
            while not stop.is_set():
                await self.offline_batch()
                await asyncio.sleep(0.2)

        await asyncio.gather(*(seller() for _ in range(sellers)), *(batcher() for _ in range(batchers)))

    async def sell(self) -> Sale:
        org = self.org
        assert org is not None
        amount = random.randint(500, 5000)
        sale = Sale(uuid.uuid4().hex, amount, manual=random.random() < 0.3, refund=0)
        if random.random() < 0.3:
            sale.refund = amount // 2
        self.sales.append(sale)
        body = {"amount": amount, "currency": "eur", "capture_method": "manual" if sale.manual else "automatic"}
        headers = {**org.agent, "Idempotency-Key": sale.key}
        created = await self._until("create", lambda h: h.post("/v1/payments", headers=headers, json=body), (201,))
        sale.payment_id, sale.intent_id = created.json()["id"], created.json()["stripe_payment_intent_id"]
        # The phone's Terminal SDK confirms the PaymentIntent with Stripe (the sandbox).
        confirmed = await self._sandbox_call(
            "POST",
            f"/v1/payment_intents/{sale.intent_id}/confirm",
            data={"payment_method": "pm_card_present"},
            headers={"Stripe-Account": org.account, "Idempotency-Key": f"confirm-{sale.key}"},
        )
        if confirmed.status_code != 200:
            raise UnexpectedAnswer(f"confirm: {confirmed.status_code} {confirmed.text[:300]}")
        payment = f"/v1/payments/{sale.payment_id}"
        if sale.manual:
            await self._until("capture", lambda h: h.post(f"{payment}/capture", headers=org.agent, json={}), (200,))
        if sale.refund:
            await self._succeeded(sale)
            refund = {"amount": sale.refund, "reason": "requested_by_customer"}
            headers = {**org.admin, "Idempotency-Key": f"refund-{sale.key}"}
            await self._until("refund", lambda h: h.post(f"{payment}/refunds", headers=headers, json=refund), (201,))
        sale.done = True
        return sale

    async def _succeeded(self, sale: Sale) -> None:
        """Waits until Stripe's webhook made the payment succeeded (a refund needs it)."""
        assert self.org is not None
        headers = self.org.admin
        for _ in range(600):
            answer = await self._until(
                "read", lambda h: h.get(f"/v1/payments/{sale.payment_id}", headers=headers), (200,)
            )
            if answer.json()["status"] == "succeeded":
                return
            await asyncio.sleep(0.1)
        raise UnexpectedAnswer(f"payment {sale.payment_id} never succeeded")

    async def offline_batch(self, size: int = 3) -> None:
        assert self.org is not None
        now = datetime.now(UTC).isoformat()
        items: list[dict[str, Any]] = [
            {
                "local_id": f"cash-{uuid.uuid4().hex}",
                "amount": random.randint(100, 3000),
                "method": "cash",
                "created_at": now,
            }
            for _ in range(size)
        ]
        headers = self.org.agent
        answer = await self._until(
            "offline batch",
            lambda h: h.post("/v1/payments/offline-batch", headers=headers, json={"transactions": items}),
            (200,),
        )
        for result in answer.json()["results"]:
            if result["status"] not in ("created", "duplicate"):  # a retried batch finds its payments
                raise UnexpectedAnswer(f"offline item {result}")
        self.cash.update({item["local_id"]: item["amount"] for item in items})

    # ---- afterwards ----------------------------------------------------------------------------

    async def settle(self, within: float = 60) -> None:
        """Until the sandbox has delivered every webhook (retries included)."""
        await self._sandbox_call("GET", f"/_sandbox/webhooks/pending?wait={within}", timeout=within + 10)

    async def verify(self, dsn: str, drain_within: float = 90) -> dict[str, int]:
        """Every invariant after the load; returns the counts checked."""
        org = self.org
        assert org is not None
        unfinished = [s.key for s in self.sales if not s.done]
        assert not unfinished, f"sales never completed: {unfinished}"
        intents = await self._intents(org.account)
        by_payment = Counter(i["metadata"].get("platform_payment_id") for i in intents)
        ours = {s.payment_id: s for s in self.sales}
        assert len(intents) == len(self.sales), f"{len(intents)} PaymentIntents for {len(self.sales)} keys"
        assert all(by_payment[pid] == 1 for pid in ours), "a payment has no PaymentIntent or several"
        conn = await asyncpg.connect(dsn)
        try:
            # An event whose effect failed while a process was down is applied again by its inbox's worker
            # (backoff 2, 4, 8 ... s): wait for the inboxes to drain before comparing with Stripe.
            for _ in range(int(drain_within / 0.5)):
                undrained = await _undrained(conn)
                if not any(undrained.values()):
                    break
                await asyncio.sleep(0.5)
            assert not any(undrained.values()), f"inbox events not applied: {undrained}"
            keys = await conn.fetch(
                "SELECT key, payment_id::text FROM payments.idempotency_keys WHERE organization_id = $1 AND operation = 'create_payment'",
                org.id,
            )
            assert {r["key"]: r["payment_id"] for r in keys} == {s.key: s.payment_id for s in self.sales}
            rows = {
                r["id"]: r
                for r in await conn.fetch(
                    "SELECT id::text, status, amount_captured, amount_refunded, method FROM payments.payments WHERE organization_id = $1",
                    org.id,
                )
            }
            for intent in intents:
                row = rows[intent["metadata"]["platform_payment_id"]]
                sale = ours[row["id"]]
                assert intent["status"] == "succeeded" and row["status"] == "succeeded", (intent["status"], dict(row))
                assert row["amount_captured"] == sale.amount and row["amount_refunded"] == sale.refund, dict(row)
                assert intent["amount_received"] == sale.amount
            cash = [r for r in rows.values() if r["method"] == "cash"]
            assert sorted(r["amount_captured"] for r in cash) == sorted(self.cash.values())
            applied = await conn.fetchval(
                "SELECT count(*) FROM payments.inbox_events WHERE account = $1 AND status = 'applied'", org.account
            )
        finally:
            await conn.close()
        today = datetime.now(UTC).date()
        query = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
        stats = await self._until(
            "read", lambda h: h.get(f"/v1/organizations/{org.id}/stats?{query}", headers=org.admin), (200,)
        )
        totals = stats.json()["totals"]
        expected = {
            "count": len(self.sales) + len(self.cash),
            "gross": sum(s.amount for s in self.sales) + sum(self.cash.values()),
            "refunded": sum(s.refund for s in self.sales),
        }
        assert {k: totals[k] for k in expected} == expected, (totals, expected)
        return {"sales": len(self.sales), "cash": len(self.cash), "intents": len(intents), "events applied": applied}

    async def _intents(self, account: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = await self._sandbox_call(
                "GET", "/v1/payment_intents", params=params, headers={"Stripe-Account": account}
            )
            body = page.json()
            found += body["data"]
            if not body.get("has_more"):
                return found
            params["starting_after"] = body["data"][-1]["id"]


async def _undrained(conn: asyncpg.Connection) -> dict[str, int]:
    """Events recorded but not applied yet (pending, or failed and waiting for a retry), per service."""
    undrained = {}
    for service in SERVICES:
        if await conn.fetchval("SELECT to_regclass($1)", f"{service}.inbox_events"):
            undrained[service] = int(
                await conn.fetchval(
                    f"SELECT count(*) FROM {service}.inbox_events WHERE status IN ('pending', 'failed')"
                )
            )
    return undrained


def _code(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("code", ""))
    except ValueError:
        return ""


# ---- faults ------------------------------------------------------------------------------------


def stack_status(run_dir: Path) -> dict[str, dict[str, Any]]:
    """`.run/status.json` of the supervisor: every process with its pid, status and restarts."""
    processes: dict[str, dict[str, Any]] = orjson.loads((run_dir / "status.json").read_bytes())["processes"]
    return processes


def process_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Recovery:
    name: str
    healthy_seconds: float  # SIGKILL → the process passes its health check again
    ready_seconds: float  # SIGKILL → the gateway answers /readyz 200


async def kill_and_wait(run_dir: Path, name: str, gateway: str, within: float = 60) -> Recovery:
    """SIGKILLs one process of the stack and waits until its supervisor made it healthy again."""
    before = stack_status(run_dir)[name]
    started = time.monotonic()
    os.kill(int(before["pid"]), signal.SIGKILL)
    healthy = ready = None
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() - started < within:
            now = stack_status(run_dir)[name]
            if healthy is None and now["restarts"] > before["restarts"] and now["status"] == "running":
                healthy = time.monotonic() - started
            if healthy is not None:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{gateway}/readyz")).status_code == 200:
                        ready = time.monotonic() - started
                        return Recovery(name, healthy, ready)
            await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was not healthy again within {within:.0f} s (healthy after {healthy})")
