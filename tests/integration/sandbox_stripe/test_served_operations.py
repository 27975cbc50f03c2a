"""Every operation of Stripe's description that a Connect + Terminal platform uses is served: asked with
made-up ids, each answers something of its own (a 404 `resource_missing`, a 400 about a parameter,
a 200) rather than Stripe's "Unrecognized request URL" — and never a 500."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from sandbox.stripe.testing import RunningSandbox
from sandbox.stripe.validation import SPEC_PATH

# The platform-relevant parts of the API, by path prefix.
RELEVANT = (
    "/v1/account",  # the account itself, connected accounts, their capabilities, persons, external accounts
    "/v1/account_links",
    "/v1/accounts",  # login links, reject
    "/v1/payment_intents",
    "/v1/payment_methods",
    "/v1/refunds",
    "/v1/charges",
    "/v1/balance",
    "/v1/balance_transactions",
    "/v1/payouts",
    "/v1/transfers",  # and reversals
    "/v1/application_fees",
    "/v1/terminal",
    "/v1/test_helpers/terminal",
    "/v1/events",
    "/v1/webhook_endpoints",
    "/v1/disputes",
)


def _operations() -> list[tuple[str, str]]:
    spec = json.loads(SPEC_PATH.read_text())
    found = [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith(RELEVANT)
        for method in operations
        if method in ("get", "post", "delete")
    ]
    return sorted(found)


OPERATIONS = _operations()


def test_the_list_covers_the_platforms_operations() -> None:
    listed = {f"{m} {p}" for m, p in OPERATIONS}
    for needed in (
        "GET /v1/accounts/{account}/capabilities",
        "POST /v1/accounts/{account}/persons",
        "POST /v1/accounts/{account}/external_accounts",
        "POST /v1/accounts/{account}/reject",
        "POST /v1/accounts/{account}/login_links",
        "POST /v1/account_links",
        "POST /v1/payment_intents/{intent}/increment_authorization",
        "GET /v1/payment_intents/search",
        "GET /v1/charges/search",
        "POST /v1/charges/{charge}/capture",
        "POST /v1/charges/{charge}/refund",
        "POST /v1/payouts/{payout}/cancel",
        "POST /v1/payouts/{payout}/reverse",
        "POST /v1/refunds/{refund}/cancel",
        "POST /v1/transfers/{transfer}/reversals/{id}",
        "POST /v1/terminal/readers/{reader}/process_setup_intent",
        "POST /v1/terminal/readers/{reader}/set_reader_display",
        "POST /v1/payment_methods/{payment_method}/attach",
        "POST /v1/payment_methods/{payment_method}/detach",
        "GET /v1/disputes",
        "POST /v1/disputes/{dispute}",
        "POST /v1/disputes/{dispute}/close",
        "GET /v1/balance_transactions/{id}",
        "GET /v1/events/{id}",
        "DELETE /v1/webhook_endpoints/{webhook_endpoint}",
    ):
        assert needed in listed
    assert len(OPERATIONS) > 100


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(stripe_sandbox: RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": "Bearer sk_test_sandbox"}
    async with httpx.AsyncClient(base_url=stripe_sandbox.url, headers=headers) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_operation_is_served(http: httpx.AsyncClient, method: str, path: str) -> None:
    response = await http.request(method, re.sub(r"\{[^}]+\}", "made_up_id_1", path))
    assert response.status_code != 500, response.text
    body = response.json()
    if response.status_code == 404:
        assert not body["error"]["message"].startswith("Unrecognized request URL"), body
        assert body["error"]["code"] == "resource_missing"
