"""Requests are checked against Stripe's description before any handler runs, and refused as Stripe
refuses them; every error, whatever the path or method, is Stripe's JSON error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import stripe

from sandbox.stripe.testing import ConnectedAccount, RunningSandbox

AUTH = {"Authorization": "Bearer sk_test_sandbox"}


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


@pytest_asyncio.fixture(loop_scope="session")
async def http(stripe_sandbox: RunningSandbox, connected: ConnectedAccount) -> AsyncIterator[httpx.AsyncClient]:
    headers = {**AUTH, "Stripe-Account": connected.id}
    async with httpx.AsyncClient(base_url=stripe_sandbox.url, headers=headers) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "code", "param", "message"),
    [
        ({"amount": "900", "currency": "eur", "bogus_param": "1"}, "parameter_unknown", "bogus_param",
         "Received unknown parameter: bogus_param"),
        ({"amount": "900", "currency": "eur", "transfer_data[bogus]": "1"}, "parameter_unknown",
         "transfer_data[bogus]", "Received unknown parameter: transfer_data[bogus]"),
        ({"amount": "nine", "currency": "eur"}, "parameter_invalid_integer", "amount", "Invalid integer: nine"),
        ({"currency": "eur"}, "parameter_missing", "amount", "Missing required param: amount."),
        ({"amount": "", "currency": "eur"}, "parameter_invalid_empty", "amount", "You passed an empty string"),
        ({"amount": "900", "currency": "eur", "confirm": "maybe"}, None, "confirm", "Invalid boolean: maybe"),
        ({"amount": "900", "currency": "eur", "capture_method": "later"}, None, "capture_method",
         "Invalid capture_method: must be one of automatic, manual, or automatic_async"),
        ({"amount": "900", "currency": "eur", "description": "x" * 1001}, None, "description",
         "must be at most 1000 characters"),
        ({"amount": "900", "currency": "eur", "payment_method_types[0]": "y" * 5001}, None,
         "payment_method_types[0]", "must be at most 5000 characters"),
        ({"amount": "900", "currency": "eur", "metadata": "nope"}, None, "metadata", "Invalid hash"),
    ],
)  # fmt: skip
async def test_invalid_bodies_are_refused_before_any_handler(
    http: httpx.AsyncClient, body: dict[str, str], code: str | None, param: str, message: str
) -> None:
    before = len((await http.get("/v1/payment_intents", params={"limit": 100})).json()["data"])
    error = _error(await http.post("/v1/payment_intents", data=body, headers={"Idempotency-Key": f"v-{param}"}))
    assert (error.get("code"), error["param"]) == (code, param)
    assert message in error["message"]
    assert len((await http.get("/v1/payment_intents", params={"limit": 100})).json()["data"]) == before
    # Stripe saves no idempotent result for a refused request: the key is still free.
    fine = await http.post(
        "/v1/payment_intents", data={"amount": "900", "currency": "eur"}, headers={"Idempotency-Key": f"v-{param}"}
    )
    assert fine.status_code == 200


async def test_query_parameters_are_checked_too(http: httpx.AsyncClient) -> None:
    error = _error(await http.get("/v1/charges", params={"bogus": "1"}))
    assert (error["code"], error["param"]) == ("parameter_unknown", "bogus")
    error = _error(await http.get("/v1/payment_intents", params={"limit": "ten"}))
    assert (error["code"], error["param"]) == ("parameter_invalid_integer", "limit")
    error = _error(await http.get("/v1/events", params={"expand[0]": "data", "types[0]": "x" * 5001}))
    assert error["param"] == "types[0]"
    assert (await http.get("/v1/charges", params={"created[gte]": "0", "limit": "3", "expand[]": "data"})).is_success


@pytest.mark.parametrize(
    "path",
    [
        "/v1/charges",
        "/v1/payment_intents",
        "/v1/refunds",
        "/v1/payouts",
        "/v1/transfers",
        "/v1/application_fees",
        "/v1/balance_transactions",
        "/v1/events",
        "/v1/disputes",
    ],
)
async def test_non_integer_created_filters_are_a_400(http: httpx.AsyncClient, path: str) -> None:
    for params in ({"created": "AAA"}, {"created[gte]": "AAA"}):
        error = _error(await http.get(path, params=params))
        assert error["param"].startswith("created") and "Invalid integer" in error["message"]
    if path == "/v1/payouts":
        error = _error(await http.get(path, params={"arrival_date[lt]": "soon"}))
        assert error["param"] == "arrival_date[lt]"


async def test_search_is_not_a_retrieve_of_an_id_search(http: httpx.AsyncClient) -> None:
    for path in ("/v1/charges/search", "/v1/payment_intents/search"):
        error = _error(await http.get(path))
        assert (error["code"], error["param"]) == ("parameter_missing", "query")
        found = await http.get(path, params={"query": "status:'succeeded'"})
        assert found.status_code == 200 and found.json()["object"] == "search_result"


async def test_unknown_paths_and_methods_answer_stripes_json(stripe_sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=stripe_sandbox.url, headers=AUTH) as http:
        for method, path in (
            ("GET", "/v1/nothing_here"),
            ("PUT", "/v1/charges"),
            ("PATCH", "/v1/payment_intents/pi_1"),
            ("DELETE", "/v1/charges/ch_1"),
            ("GET", "/nowhere"),
            ("PUT", "/_sandbox/health"),
        ):
            error = _error(await http.request(method, path), 404)
            assert error["message"].startswith(f"Unrecognized request URL ({method}: {path})")


async def test_currency_must_be_supported_and_amounts_above_its_minimum(connected: ConnectedAccount) -> None:
    client = connected.client
    with pytest.raises(stripe.InvalidRequestError) as info:
        await client.v1.payment_intents.create_async(params={"amount": 900, "currency": "zzz"})
    assert info.value.param == "currency" and "Invalid currency: zzz" in str(info.value.user_message)
    for amount, currency in ((49, "eur"), (1, "usd"), (29, "gbp"), (49, "jpy")):
        with pytest.raises(stripe.InvalidRequestError) as info:
            await client.v1.payment_intents.create_async(
                params={"amount": amount, "currency": currency, "confirm": True, "payment_method": "pm_card_visa"}
            )
        assert (info.value.code, info.value.param) == ("amount_too_small", "amount")
    for amount, currency in ((50, "eur"), (30, "gbp"), (50, "jpy")):
        intent = await client.v1.payment_intents.create_async(params={"amount": amount, "currency": currency})
        assert (intent.amount, intent.currency) == (amount, currency)


async def test_newer_parameters_the_platform_sends_are_accepted(stripe_sandbox: RunningSandbox) -> None:
    platform = stripe_sandbox.client()
    account = await platform.v1.accounts.create_async(
        params={"controller": {"stripe_dashboard": {"type": "express"}, "fees": {"payer": "application"}}}
    )
    assert account.type == "express"
    connected = await stripe_sandbox.create_connected_account()
    intent = await connected.client.v1.payment_intents.create_async(
        params={"amount": 900, "currency": "eur", "capture_method": "automatic_async"}
    )
    assert intent.status == "requires_payment_method"
