"""Payments reads its limits from its environment: amounts and the per-member rate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fixtures.database import PlatformDatabase
from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack, stack_with
from tests.integration.payments.conftest import key


@pytest.fixture(scope="module")
async def strict(
    database: PlatformDatabase, stripe_sandbox: Any, qonto_sandbox: Any, smtp_server: Any
) -> AsyncIterator[Stack]:
    settings = {"PAYMENT_MIN_AMOUNT": "500", "PAYMENT_MAX_AMOUNT": "2000", "PAYMENT_RATE_LIMIT_PER_MINUTE": "3"}
    async with stack_with(database, stripe_sandbox, qonto_sandbox, smtp_server, settings) as running:
        yield running


async def test_configured_amounts_and_rate(strict: Stack) -> None:
    org = await onboarded_organization(strict)
    for amount, status in [(499, 400), (2001, 400)]:
        answer = await strict.http.post("/v1/payments", headers={**org.agent_headers, **key()}, json={"amount": amount})
        assert answer.status_code == status, answer.text
    answers = [
        await strict.http.post("/v1/payments", headers={**org.agent_headers, **key()}, json={"amount": 500 + i})
        for i in range(4)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
