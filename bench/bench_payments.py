"""Payment create through every hop, next to the bare-parts floor; stats over 1,000,000 payments.

1. `POST /v1/payments` (new Idempotency-Key each time) through gateway → Payments → Accounts
   (payment policy) → Stripe sandbox (PaymentIntent on the connected account) → PostgreSQL,
   with the whole stack as separate processes (`python -m stack`).
2. The floor, in the same run: a bare Starlette endpoint (uvicorn, uvloop, aiohttp) that makes the same
   sandbox call (same account, idempotency key) and one INSERT, with no gateway, gRPC, auth,
   policy lookup or idempotency bookkeeping.
3. Stats: 1,000,000 succeeded payments of one organisation over a year (20 agents), the rollup
   rebuilt from them, then `GET /v1/organizations/{id}/stats` (a year, then 30 days) and
   `GET /v1/members/{id}/stats` through the gateway.
Targets on this machine: ≥ 300 creates/s, p99 ≤ 50 ms; stats ≤ 50 ms.
Run: `.venv/bin/python bench/bench_payments.py` (BENCH_CONCURRENCY=8,16,4, BENCH_SECONDS, BENCH_STATS_ROWS).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.loadgen import Summary, measure
from bench.stacks import login, running_stack, uvicorn_source
from runtime.embedded_pg import EmbeddedPostgres, start_embedded_postgres

# Requests in flight, one pair of lines each. The target is an operating point: at 300/s with at
# most 50 ms p99, about 8 are in flight (Little's law: 300/s x ~27 ms mean); 16 shows saturation.
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "8,16,4").split(",")]
DURATION = float(os.environ.get("BENCH_SECONDS", "8"))
STATS_ROWS = int(os.environ.get("BENCH_STATS_ROWS", "1000000"))
PASSWORD = "bench-member-password"

FLOOR_APP = """
import contextlib, os, uuid
import aiohttp, asyncpg, orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

SANDBOX, ACCOUNT, DSN = os.environ["FLOOR_SANDBOX"], os.environ["FLOOR_ACCOUNT"], os.environ["FLOOR_DSN"]
state = {}

@contextlib.asynccontextmanager
async def lifespan(app):
    state["pool"] = await asyncpg.create_pool(DSN, min_size=4, max_size=20)
    await state["pool"].execute(
        "CREATE TABLE IF NOT EXISTS floor_payments (id uuid PRIMARY KEY, amount bigint, intent text, secret text)")
    async with aiohttp.ClientSession(base_url=SANDBOX, headers={
            "Authorization": "Bearer sk_test_sandbox", "Stripe-Account": ACCOUNT}) as http:
        state["http"] = http
        yield

async def create(request):
    body = orjson.loads(await request.body())
    payment_id = uuid.uuid4()
    async with state["http"].post("/v1/payment_intents", data=(
            f"amount={body['amount']}&currency=eur&payment_method_types[]=card_present"
            f"&metadata[platform_payment_id]={payment_id}").encode(),
            headers={"Idempotency-Key": f"payment:{payment_id}:create",
                     "Content-Type": "application/x-www-form-urlencoded"}) as answer:
        intent = orjson.loads(await answer.read())
    await state["pool"].execute("INSERT INTO floor_payments VALUES ($1, $2, $3, $4)",
                                payment_id, body["amount"], intent["id"], intent["client_secret"])
    return Response(orjson.dumps({"id": str(payment_id), "stripe_payment_intent_id": intent["id"],
                                  "client_secret": intent["client_secret"]}), 201, media_type="application/json")

app = Starlette(routes=[Route("/v1/payments", create, methods=["POST"])], lifespan=lifespan)
"""


def _create_load(label: str, url: str, headers: dict[str, str], concurrency: int, duration: float) -> Summary:
    """Keep-alive connections posting payments, each with a new Idempotency-Key."""
    return measure(
        label,
        url,
        method="POST",
        headers={**headers, "Content-Type": "application/json"},
        body=b'{"amount": 1000, "currency": "eur"}',
        unique_header="Idempotency-Key",
        expect=201,
        concurrency=concurrency,
        duration=duration,
        warmup=1.5,
    )


def _settle(sandbox: str) -> None:
    """Waits until the sandbox has delivered every webhook of the previous run (they would load the next)."""
    httpx.get(f"{sandbox}/_sandbox/webhooks/pending?wait=60", timeout=70)


def _call(method: str, url: str, token: str | None = None, body: dict[str, object] | None = None) -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None, headers=headers, method=method
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        result: dict[str, object] = json.loads(answer.read())
        return result


def _organisation(gateway: str) -> tuple[str, str, str, str, str]:
    """An onboarded organisation (direct charges) and a logged-in agent: ids, account, agent token."""
    admin = login(gateway)
    tag = uuid.uuid4().hex[:8]
    org = _call(
        "POST",
        f"{gateway}/v1/organizations",
        admin,
        {
            "name": f"Bench {tag}",
            "email": f"bench-{tag}@example.test",
            "country": "FR",
            "business_type": "non_profit",
            "address": {"line1": "1 rue", "city": "Lyon", "postal_code": "69001"},
        },
    )
    org_id = str(org["id"])
    account = _call("POST", f"{gateway}/v1/organizations/{org_id}/stripe-account", admin, {})
    link = _call(
        "POST",
        f"{gateway}/v1/organizations/{org_id}/onboarding-link",
        admin,
        {"return_url": "https://bench.test/done", "refresh_url": "https://bench.test/again"},
    )
    httpx.get(str(link["url"]), follow_redirects=False, timeout=30)
    status = _call("GET", f"{gateway}/v1/organizations/{org_id}/stripe-account?refresh=true", admin)
    assert status["charges_enabled"], status
    email = f"agent-{tag}@example.test"
    agent = _call(
        "POST",
        f"{gateway}/v1/organizations/{org_id}/members",
        admin,
        {"email": email, "name": "Agent", "role": "agent", "password": PASSWORD},
    )
    return org_id, str(agent["id"]), str(account["stripe_account_id"]), login(gateway, email, PASSWORD), admin


@contextlib.contextmanager
def payments_stack() -> Iterator[tuple[EmbeddedPostgres, dict[str, object]]]:
    """Embedded PostgreSQL and the stack (`python -m stack`) as the payment benches run them: no
    rate limit, pools of 20; yields the database and .run/stack.json."""
    with tempfile.TemporaryDirectory() as tmp:
        postgres = start_embedded_postgres(Path(tmp) / "pg")
        try:
            env = {"DATABASE_URL": postgres.url, "PAYMENT_RATE_LIMIT_PER_MINUTE": "0", "DB_POOL_MAX": "20"}
            with running_stack(env) as stack:
                yield postgres, stack
        finally:
            postgres.discard()


@contextlib.contextmanager
def _floor_server(sandbox: str, account: str, dsn: str) -> Iterator[str]:
    with uvicorn_source(FLOOR_APP, {"FLOOR_SANDBOX": sandbox, "FLOOR_ACCOUNT": account, "FLOOR_DSN": dsn}) as url:
        yield url


async def _seed_stats(dsn: str, org_id: str, agent_id: str, rows: int) -> tuple[float, int]:
    """`rows` succeeded payments over a year for 20 agents, and the rollup rebuilt from them."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute(
            """INSERT INTO payments.payments (id, organization_id, member_id, amount, currency, method, capture_method,
                      status, charge_model, application_fee_amount, amount_captured, amount_refunded, local_id,
                      local_date, created_at, updated_at)
               SELECT gen_random_uuid(), $1, CASE WHEN i % 20 = 0 THEN $3 ELSE 'bench-agent-' || (i % 20) END, 500 + i % 4500, 'eur', 'cash', 'automatic',
                      'succeeded', 'none', 0, 500 + i % 4500, CASE WHEN i % 50 = 0 THEN 100 ELSE 0 END,
                      'bench-' || i, (timestamptz '2025-01-01 08:00+00' + (i % 365) * interval '1 day')::date,
                      timestamptz '2025-01-01 08:00+00' + (i % 365) * interval '1 day', now()
                 FROM generate_series(1, $2) AS i""",
            org_id,
            rows,
            agent_id,
        )
        await conn.execute(
            """INSERT INTO payments.daily_totals AS t (organization_id, day, member_id, currency, count, gross, fees, refunded)
               SELECT organization_id, local_date, member_id, currency, count(*), sum(amount_captured),
                      sum(application_fee_amount - application_fee_refunded), sum(amount_refunded)
                 FROM payments.payments WHERE organization_id = $1 AND local_id LIKE 'bench-%'
                GROUP BY organization_id, local_date, member_id, currency
               ON CONFLICT (organization_id, day, member_id, currency) DO UPDATE
                  SET count = t.count + excluded.count, gross = t.gross + excluded.gross,
                      fees = t.fees + excluded.fees, refunded = t.refunded + excluded.refunded""",
            org_id,
        )
        await conn.execute("ANALYZE payments.payments; ANALYZE payments.daily_totals")
        rollup = await conn.fetchval("SELECT count(*) FROM payments.daily_totals WHERE organization_id = $1", org_id)
        return time.perf_counter() - started, int(rollup)
    finally:
        await conn.close()


def _timed_gets(label: str, url: str, token: str, count: int = 200) -> str:
    latencies = []
    body: dict[str, object] = {}
    with httpx.Client(headers={"authorization": f"Bearer {token}"}, timeout=30) as http:
        for _ in range(10):
            http.get(url)
        for _ in range(count):
            started = time.perf_counter()
            answer = http.get(url)
            latencies.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
            body = answer.json()
    latencies.sort()
    totals = body.get("totals", {})
    assert isinstance(totals, dict)
    return (
        f"{label:<44} p50 {latencies[len(latencies) // 2]:6.2f} ms   p99 {latencies[int(len(latencies) * 0.99)]:6.2f} ms"
        f"   ({len(body.get('days', []))} days, count {totals.get('count')}, gross {totals.get('gross')})"  # type: ignore[arg-type]
    )


def main() -> None:
    load_before = f"{os.getloadavg()[0]:.2f}"
    lines: list[str] = []
    with payments_stack() as (postgres, stack):
        gateway = str(stack["gateway"])
        sandbox = str(stack["sandboxes"]["stripe"])  # type: ignore[index]
        org_id, agent_id, account, agent_token, admin_token = _organisation(gateway)
        agent = {"Authorization": f"Bearer {agent_token}"}
        for concurrency in CONCURRENCY:
            _settle(sandbox)
            with _floor_server(sandbox, account, postgres.url) as floor_url:
                floor = _create_load(
                    f"floor, {concurrency} in flight", f"{floor_url}/v1/payments", {}, concurrency, DURATION
                )
            _settle(sandbox)
            full = _create_load(
                f"all hops, {concurrency} in flight", f"{gateway}/v1/payments", agent, concurrency, DURATION
            )
            lines += [floor.line(), f"{full.line()}   {full.rps / floor.rps:.2f} x floor"]
        _settle(sandbox)
        seconds, rollup = asyncio.run(_seed_stats(postgres.url, org_id, agent_id, STATS_ROWS))
        lines.append(f"seeded {STATS_ROWS:,} payments and {rollup:,} rollup rows in {seconds:.1f} s")
        base = f"{gateway}/v1/organizations/{org_id}/stats"
        lines.append(_timed_gets("org stats, a year (365 days)", f"{base}?from=2025-01-01&to=2025-12-31", admin_token))
        lines.append(_timed_gets("org stats, 30 days", f"{base}?from=2025-06-01&to=2025-06-30", admin_token))
        member = f"{gateway}/v1/members/{agent_id}/stats?organization_id={org_id}&from=2025-01-01&to=2025-12-31"
        lines.append(_timed_gets("member stats, a year (1/20 of the rows)", member, admin_token))
    print(f"POST /v1/payments (new key each): {DURATION:.0f} s per line, {os.cpu_count()} cores")
    print(f"load average before/after: {load_before} / {os.getloadavg()[0]:.2f} (other processes share the cores)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
