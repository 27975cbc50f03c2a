"""Payments caches each organisation's payment policy while Accounts' change stream is live."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from opentelemetry.trace import SpanKind

from tests.conftest import SPANS
from tests.fixtures.database import PlatformDatabase
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack, sandbox_env, start_stack
from tests.integration.payments.conftest import create_payment, deliver, key


@pytest.fixture(scope="module")
async def unlimited(
    database: PlatformDatabase, stripe_sandbox: Any, qonto_sandbox: Any, smtp_server: Any
) -> AsyncIterator[Stack]:
    env = {**sandbox_env(stripe_sandbox, qonto_sandbox, smtp_server), "PAYMENT_RATE_LIMIT_PER_MINUTE": "0"}
    async with start_stack(database, env) as running:
        yield running


async def _asks_accounts(stack: Stack, org: OrgContext) -> tuple[bool, dict[str, Any]]:
    """Creates a payment; whether Payments asked Accounts for the policy on the way."""
    SPANS.clear()
    payment = await create_payment(stack, org.agent_headers, amount=1000)
    asked = any(
        s.kind == SpanKind.SERVER and s.name.endswith("AccountsService/GetPaymentPolicy")
        for s in SPANS.get_finished_spans()
    )
    return asked, payment


async def _until_cached(stack: Stack, org: OrgContext) -> None:
    async def cached() -> bool:
        return not (await _asks_accounts(stack, org))[0]

    await eventually(cached, "the policy served from Payments' cache")


async def test_policy_is_cached_and_a_change_applies_to_the_next_payments(unlimited: Stack) -> None:
    org = await onboarded_organization(unlimited, fee_percent_bps=100)
    await _until_cached(unlimited, org)
    asked, payment = await _asks_accounts(unlimited, org)
    assert not asked and payment["application_fee_amount"] == 10

    admin = await unlimited.admin_headers()
    changed = await unlimited.http.patch(f"/v1/organizations/{org.id}", headers=admin, json={"fee_percent_bps": 500})
    assert changed.status_code == 200, changed.text
    fees: list[int] = []

    async def new_fee() -> bool:  # the change reaches Payments within milliseconds of its commit
        fees.append((await _asks_accounts(unlimited, org))[1]["application_fee_amount"])
        return fees[-1] == 50

    await eventually(new_fee, "the new fee applied", attempts=40)
    assert fees[-1] == 50 and fees.count(10) <= 1, fees


async def test_the_payment_right_after_a_fee_change_uses_the_new_fee(unlimited: Stack) -> None:
    """Read-your-writes: a PATCH that returned is seen by the next payment, every time, and the
    policy is served from the cache again after that (no call to Accounts per payment)."""
    org = await onboarded_organization(unlimited, fee_percent_bps=100)
    await _until_cached(unlimited, org)
    admin = await unlimited.admin_headers()
    for bps in (500, 200, 900, 300, 700, 400):
        changed = await unlimited.http.patch(
            f"/v1/organizations/{org.id}", headers=admin, json={"fee_percent_bps": bps}
        )
        assert changed.status_code == 200, changed.text
        payment = (await _asks_accounts(unlimited, org))[1]
        assert payment["application_fee_amount"] == bps // 10, (bps, payment["application_fee_amount"])
    await _until_cached(unlimited, org)


async def test_an_account_that_can_no_longer_take_charges_is_refused_at_once(unlimited: Stack) -> None:
    org = await onboarded_organization(unlimited)
    await _until_cached(unlimited, org)
    deauthorized = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "account.application.deauthorized",
        "account": org.stripe_account_id,
        "created": int(time.time()) + 2,
        "data": {"object": {"id": "ca_platform", "object": "application"}},
    }
    assert await deliver(unlimited, [deauthorized], service="accounts") == ["applied"]
    answers: list[int] = []

    async def refused() -> bool:
        answer = await unlimited.http.post("/v1/payments", headers={**org.agent_headers, **key()}, json={"amount": 900})
        answers.append(answer.status_code)
        if answer.status_code == 409:
            assert answer.json()["code"] == "charges_not_enabled"
        return answer.status_code == 409

    await eventually(refused, "payments refused once the account was deauthorised", attempts=40)
    assert answers[-1] == 409 and answers.count(201) <= 1, answers


async def test_nothing_is_cached_while_changes_cannot_be_followed(unlimited: Stack) -> None:
    org = await onboarded_organization(unlimited)
    await _until_cached(unlimited, org)
    conn = await asyncpg.connect(unlimited.database.admin_url)
    try:
        # Accounts loses its LISTEN connection: it ends the watch streams, Payments forgets and asks again.
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'listen:accounts_policy_changed'"
        )
    finally:
        await conn.close()
    assert killed >= 1

    async def asks_accounts() -> bool:  # noticed within milliseconds; the stream comes back after a second or two
        return (await _asks_accounts(unlimited, org))[0]

    await eventually(asks_accounts, "Payments asking Accounts while changes cannot be followed", attempts=40)
    await _until_cached(unlimited, org)  # listener and stream come back on their own
