"""Wire protocol: auth, account scoping, idempotency, pagination, errors, faults, operations endpoints."""

from __future__ import annotations

import asyncio
import base64
import signal
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import stripe
from stripe.params import PaymentIntentCreateParams

from runtime.asgi_server import serve_asgi
from sandbox.stripe.app import create_app
from sandbox.stripe.config import SandboxConfig
from sandbox.stripe.testing import ConnectedAccount, RunningSandbox, free_port, run_sandbox
from sandbox.stripe.wire import parse_form
from tests.fixtures.raw_http import MALFORMED_REQUESTS, send_raw

REPO = Path(__file__).resolve().parents[3]
PI: PaymentIntentCreateParams = {"amount": 1500, "currency": "eur", "payment_method_types": ["card"]}  # type: ignore[typeddict-unknown-key]


def test_parse_form_nesting() -> None:
    params = parse_form(
        "metadata[k]=v&payment_method_types[0]=card&payment_method_types[1]=card_present"
        "&expand[]=latest_charge&expand[]=payment_intent&transfer_data[destination]=acct_1&a=&metadata[0]=x"
    )
    assert params == {
        "metadata": {"k": "v", "0": "x"},
        "payment_method_types": ["card", "card_present"],
        "expand": ["latest_charge", "payment_intent"],
        "transfer_data": {"destination": "acct_1"},
        "a": "",
    }


async def test_auth_failures_have_stripe_shape(stripe_sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=stripe_sandbox.url) as http:
        for headers in ({}, {"Authorization": "Bearer sk_live_nope"}, {"Authorization": "Bearer pk_test_x"}):
            response = await http.get("/v1/balance", headers=headers)
            assert response.status_code == 401
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and error["message"]
        basic = base64.b64encode(b"sk_test_basic:").decode()
        assert (await http.get("/v1/balance", headers={"Authorization": f"Basic {basic}"})).status_code == 200
    with pytest.raises(stripe.AuthenticationError):
        await stripe_sandbox.client(api_key="sk_live_123").v1.balance.retrieve_async()


async def test_objects_are_scoped_per_account(stripe_sandbox: RunningSandbox, connected: ConnectedAccount) -> None:
    other = await stripe_sandbox.create_connected_account()
    intent = await connected.client.v1.payment_intents.create_async(params=PI)
    assert (await connected.client.v1.payment_intents.retrieve_async(intent.id)).id == intent.id
    for client in (other.client, connected.platform):
        with pytest.raises(stripe.InvalidRequestError) as info:
            await client.v1.payment_intents.retrieve_async(intent.id)
        assert info.value.http_status == 404 and info.value.code == "resource_missing"
    with pytest.raises(stripe.PermissionError):
        await stripe_sandbox.client(stripe_account="acct_doesnotexist").v1.balance.retrieve_async()


async def test_idempotent_replay_and_conflict(stripe_sandbox: RunningSandbox, connected: ConnectedAccount) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "replay-1"}
    first = await connected.client.v1.payment_intents.create_async(params=PI, options=options)
    again = await connected.client.v1.payment_intents.create_async(params=PI, options=options)
    assert again.id == first.id
    with pytest.raises(stripe.IdempotencyError):
        await connected.client.v1.payment_intents.create_async(params={**PI, "amount": 99}, options=options)
    # The same key on another account is another key.
    other = await connected.platform.v1.payment_intents.create_async(params=PI, options=options)
    assert other.id != first.id
    headers = {"Authorization": "Bearer sk_test_sandbox", "Stripe-Account": connected.id, "Idempotency-Key": "raw-1"}
    async with httpx.AsyncClient(base_url=stripe_sandbox.url, headers=headers) as http:
        body = {"amount": "700", "currency": "eur"}
        one = await http.post("/v1/payment_intents", data=body)
        two = await http.post("/v1/payment_intents", data=body)
        assert two.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in one.headers
        assert (one.status_code, one.content) == (two.status_code, two.content)
        conflict = await http.post("/v1/payment_intents", data={**body, "amount": "701"})
        assert conflict.status_code == 400 and conflict.json()["error"]["type"] == "idempotency_error"
        # Errors replay too.
        bad = await http.post("/v1/payment_intents", data={"currency": "eur"}, headers={"Idempotency-Key": "raw-2"})
        bad_again = await http.post(
            "/v1/payment_intents", data={"currency": "eur"}, headers={"Idempotency-Key": "raw-2"}
        )
        assert bad.status_code == bad_again.status_code == 400 and bad.content == bad_again.content
        # Ignored on GET.
        got = await http.get(f"/v1/payment_intents/{one.json()['id']}", headers={"Idempotency-Key": "raw-1"})
        assert got.status_code == 200 and "idempotent-replayed" not in got.headers


async def test_concurrent_requests_with_one_key_execute_once(connected: ConnectedAccount) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "concurrent-1"}
    results = await asyncio.gather(
        *(
            connected.client.v1.payment_intents.create_async(
                params={**PI, "confirm": True, "payment_method": "pm_card_visa"}, options=options
            )
            for _ in range(10)
        )
    )
    assert len({intent.id for intent in results}) == 1
    charges = await connected.client.v1.charges.list_async(params={"payment_intent": results[0].id})
    assert len(charges.data) == 1


async def test_list_pagination_newest_first(stripe_sandbox: RunningSandbox) -> None:
    account = await stripe_sandbox.create_connected_account()
    created = [
        (await account.client.v1.payment_intents.create_async(params={**PI, "amount": 100 + i})).id for i in range(5)
    ]
    newest_first = list(reversed(created))
    page = await account.client.v1.payment_intents.list_async(params={"limit": 2})
    assert page["object"] == "list" and page.url == "/v1/payment_intents" and page.has_more
    assert [p.id for p in page.data] == newest_first[:2]
    page2 = await account.client.v1.payment_intents.list_async(params={"limit": 2, "starting_after": page.data[-1].id})
    assert [p.id for p in page2.data] == newest_first[2:4] and page2.has_more
    last = await account.client.v1.payment_intents.list_async(params={"limit": 2, "starting_after": page2.data[-1].id})
    assert [p.id for p in last.data] == newest_first[4:] and not last.has_more
    before = await account.client.v1.payment_intents.list_async(params={"limit": 2, "ending_before": newest_first[3]})
    assert [p.id for p in before.data] == newest_first[1:3] and before.has_more
    everything = [p.id async for p in page.auto_paging_iter()]
    assert everything == newest_first


async def test_errors_faults_and_operations(stripe_sandbox: RunningSandbox, connected: ConnectedAccount) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        await connected.client.v1.payment_intents.create_async(params={"currency": "eur"})  # type: ignore[typeddict-item]  # amount left out on purpose
    assert info.value.code == "parameter_missing" and info.value.param == "amount"
    async with httpx.AsyncClient(base_url=stripe_sandbox.url) as http:
        assert (await http.get("/_sandbox/health")).json() == {"status": "ok"}
        unknown = await http.get("/v1/nothing_here", headers={"Authorization": "Bearer sk_test_x"})
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"
        armed = await http.post("/_sandbox/fail", json={"fail_next": 2, "status": 503})
        assert armed.status_code == 200
        for _ in range(2):
            with pytest.raises(stripe.APIError) as api_error:
                await connected.client.v1.balance.retrieve_async()
            assert api_error.value.http_status == 503
        await connected.client.v1.balance.retrieve_async()
        await http.post("/_sandbox/fail", json={"fail_next": 1, "status": 429})
        with pytest.raises(stripe.RateLimitError):
            await connected.client.v1.balance.retrieve_async()
        await connected.client.v1.balance.retrieve_async()
        log = (await http.get("/_sandbox/requests", params={"limit": 5})).json()["data"]
        assert log[0]["path"] == "/v1/balance" and log[0]["status"] == 200 and log[0]["account"] == connected.id
        assert {"method", "duration_ms"} <= log[0].keys() and "sk_test" not in str(log)
        config = (await http.post("/_sandbox/config", json={"fee_fixed": 30})).json()
        assert config["fee_fixed"] == 30
        await http.post("/_sandbox/config", json={"fee_fixed": 25})
        assert (await http.post("/_sandbox/config", json={"nope": 1})).status_code == 400


async def test_optional_rate_limit() -> None:
    async with run_sandbox(rate_limit_per_second=3) as sandbox:
        client = sandbox.client()
        outcomes = await asyncio.gather(*(client.v1.balance.retrieve_async() for _ in range(8)), return_exceptions=True)
        limited = [o for o in outcomes if isinstance(o, stripe.RateLimitError)]
        assert limited and len(limited) < 8
        assert isinstance(limited[0].json_body, dict)
        assert limited[0].http_status == 429 and limited[0].json_body["error"]["code"] == "rate_limit"


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("malformed", list(MALFORMED_REQUESTS))
async def test_a_request_the_server_cannot_parse_is_answered_as_stripe_does(http: str, malformed: str) -> None:
    async with serve_asgi(create_app(SandboxConfig()), http=http) as url:
        answer = await send_raw(url, MALFORMED_REQUESTS[malformed])
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    error = orjson.loads(answer.body)["error"]
    assert error["type"] == "invalid_request_error"
    assert ("too long" in error["message"]) == (malformed == "header too long")


async def test_the_command_line_server_answers_and_logs_a_malformed_request_in_json() -> None:
    """`python -m sandbox.stripe` (uvloop, its own uvicorn set-up): Stripe's JSON 400, and uvicorn's
    own warning about it is a JSON line like every other."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox.stripe", "--port", str(port), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        await asyncio.wait_for(process.stdout.readline(), 15)  # "stripe sandbox listening on ..."
        answer = await send_raw(f"http://127.0.0.1:{port}", MALFORMED_REQUESTS["request line"])
        assert answer.status == 400 and orjson.loads(answer.body)["error"]["type"] == "invalid_request_error"
        process.send_signal(signal.SIGTERM)
        logged = (await asyncio.wait_for(process.stderr.read(), 15)).decode().splitlines()
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = [orjson.loads(line) for line in logged]  # every line is JSON
    assert any(line["logger"] == "uvicorn.error" and line["level"] == "warning" for line in lines), lines
