"""Throttling: sign-in backs off per account and per client address (429, Retry-After, a stable
code, kept in Accounts' database so every gateway replica agrees); refunds and offline sales
count in the member's payment rate like payments do."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from runtime.asgi_server import serve_asgi
from services.accounts.domain import LOGIN_FREE_FAILURES
from tests.fixtures.database import PlatformDatabase
from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack, sandbox_env, start_stack
from tests.integration.payments.conftest import confirm, create_payment, key, settle


@pytest.fixture(scope="module")
async def behind_proxy(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway replica behind one trusted proxy: the client address is X-Forwarded-For's."""
    async with (
        serve_asgi(create_app(stack.gateway_settings(trusted_proxy_hops=1))) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield http


def _address() -> str:
    return f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


async def _login(http: httpx.AsyncClient, address: str, email: str, password: str) -> httpx.Response:
    return await http.post(
        "/v1/auth/token", json={"email": email, "password": password}, headers={"X-Forwarded-For": address}
    )


async def _fail(http: httpx.AsyncClient, address: str, emails: list[str]) -> None:
    """One wrong sign-in per e-mail from `address`, each answered 401."""
    for email in emails:
        assert (await _login(http, address, email, "wrong-password-0")).status_code == 401


def _assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json()["code"] == "too_many_attempts"
    assert int(answer.headers["retry-after"]) >= 1


async def test_an_account_is_locked_after_a_few_wrong_passwords_from_any_address(
    stack: Stack, behind_proxy: httpx.AsyncClient
) -> None:
    org = await onboarded_organization(stack, onboard=False)
    address = _address()
    await _fail(behind_proxy, address, [org.agent_email] * LOGIN_FREE_FAILURES["account"])
    _assert_throttled(await _login(behind_proxy, address, org.agent_email, org.password))  # even the right one
    _assert_throttled(await _login(stack.http, "", org.agent_email, org.password))  # through the other replica
    # Another account from the same address is not locked.
    assert (await _login(behind_proxy, address, org.admin_email, org.password)).status_code == 200


async def test_a_successful_sign_in_clears_the_accounts_failures(stack: Stack, behind_proxy: httpx.AsyncClient) -> None:
    org = await onboarded_organization(stack, onboard=False)
    answers = []
    for password in ["wrong-password-0"] * 4 + [org.password] + ["wrong-password-0"] * 4 + [org.password]:
        answers.append((await _login(behind_proxy, _address(), org.agent_email, password)).status_code)
    assert answers == [401] * 4 + [200] + [401] * 4 + [200]


async def test_an_address_is_locked_after_many_failures_whatever_the_account(
    stack: Stack, behind_proxy: httpx.AsyncClient
) -> None:
    org = await onboarded_organization(stack, onboard=False)
    address = _address()
    unknown = [f"nobody-{uuid.uuid4().hex[:8]}@example.test" for _ in range(LOGIN_FREE_FAILURES["address"])]
    await _fail(behind_proxy, address, unknown)
    _assert_throttled(await _login(behind_proxy, address, org.agent_email, org.password))
    assert (await _login(behind_proxy, _address(), org.agent_email, org.password)).status_code == 200


@pytest.fixture(scope="module")
async def strict(
    database: PlatformDatabase, stripe_sandbox: Any, qonto_sandbox: Any, smtp_server: Any
) -> AsyncIterator[Stack]:
    env = {**sandbox_env(stripe_sandbox, qonto_sandbox, smtp_server), "PAYMENT_RATE_LIMIT_PER_MINUTE": "3"}
    async with start_stack(database, env) as running:
        running.extras.update(stripe_sandbox=stripe_sandbox, qonto_sandbox=qonto_sandbox, smtp_server=smtp_server)
        yield running


def _cash() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"local_id": uuid.uuid4().hex, "amount": 1000, "method": "cash", "created_at": now}


async def test_offline_sales_count_in_the_members_payment_rate(strict: Stack) -> None:
    org = await onboarded_organization(strict)
    batch = await strict.http.post(
        "/v1/payments/offline-batch", headers=org.agent_headers, json={"transactions": [_cash(), _cash()]}
    )
    assert batch.status_code == 200, batch.text
    await create_payment(strict, org.agent_headers)  # the third in the minute
    over = await strict.http.post(
        "/v1/payments/offline-batch", headers=org.agent_headers, json={"transactions": [_cash()]}
    )
    assert over.status_code == 429, over.text
    assert over.json()["code"] == "rate_limited" and int(over.headers["retry-after"]) >= 1
    # A batch larger than the rate still goes through in a fresh window (it takes the whole window).
    other = await onboarded_organization(strict)
    big = await strict.http.post(
        "/v1/payments/offline-batch", headers=other.agent_headers, json={"transactions": [_cash() for _ in range(5)]}
    )
    assert big.status_code == 200 and {r["status"] for r in big.json()["results"]} == {"created"}, big.text


async def test_refunds_count_in_the_members_payment_rate(strict: Stack) -> None:
    org = await onboarded_organization(strict)
    account = org.stripe_account_id
    payments = []
    for agent_key in range(2):
        payment = await create_payment(strict, org.agent_headers if agent_key == 0 else org.admin_headers)
        await confirm(strict, payment, account)
        payments.append(await settle(strict, org, payment, account))
    assert all(p["status"] == "succeeded" for p in payments), payments
    # The admin made one payment; two refunds fill its window of three, a third is refused.
    answers = []
    for target in (payments[0], payments[1], payments[0]):
        answer = await strict.http.post(
            f"/v1/payments/{target['id']}/refunds", headers={**org.admin_headers, **key()}, json={"amount": 100}
        )
        answers.append(answer)
    assert [a.status_code for a in answers] == [201, 201, 429], [a.text for a in answers]
    assert answers[-1].json()["code"] == "rate_limited"
    # A replay of a refund already made is answered as before, not counted.
    replay_key = answers[0].request.headers["idempotency-key"]
    replay = await strict.http.post(
        f"/v1/payments/{payments[0]['id']}/refunds",
        headers={**org.admin_headers, "Idempotency-Key": replay_key},
        json={"amount": 100},
    )
    assert replay.status_code == 201 and replay.json()["id"] == answers[0].json()["id"]
