"""The walking skeleton through real parts: gateway over HTTP → gRPC → Accounts → PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.conftest import SPANS
from tests.fixtures.database import PlatformDatabase
from tests.fixtures.stack import ADMIN_EMAIL, ADMIN_PASSWORD, TEST_AUTH_SECRET, Stack, start_stack


@pytest.fixture(scope="module")
async def platform(database: PlatformDatabase) -> AsyncIterator[Stack]:
    async with start_stack(database, {}) as running:
        yield running


async def test_healthz_and_readyz(platform: Stack) -> None:
    assert (await platform.http.get("/healthz")).json() == {"status": "ok"}
    ready = await platform.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["services"] == {name: "ok" for name in ("accounts", "payments", "terminal", "banking")}


async def test_login_and_me(platform: Stack) -> None:
    token = await platform.http.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["member"]["role"] == "platform_admin"
    me = await platform.http.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == ADMIN_EMAIL
    assert me.json()["organization"] is None
    assert me.headers["x-request-id"]


@pytest.mark.parametrize(
    ("email", "password"),
    [(ADMIN_EMAIL, "wrong-password-1"), ("nobody@platform.test", ADMIN_PASSWORD)],
)
async def test_wrong_credentials_are_401(platform: Stack, email: str, password: str) -> None:
    answer = await platform.http.post("/v1/auth/token", json={"email": email, "password": password})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "invalid_credentials"
    assert answer.json()["request_id"] == answer.headers["x-request-id"]


async def test_expired_tampered_and_missing_tokens_are_401(platform: Stack) -> None:
    login = await platform.http.post("/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    member_id = login.json()["member"]["id"]
    expired = platform.signer.issue(member_id, None, "platform_admin", now=time.time() - 3600)
    valid = login.json()["access_token"]
    head, payload, signature = valid.split(".")
    tampered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    from runtime.auth import TokenSigner

    foreign = TokenSigner("another-secret-that-is-long-enough-000000").issue(member_id, None, "platform_admin")
    for token, code in [(expired, "token_expired"), (tampered, "invalid_token"), (foreign, "invalid_token")]:
        answer = await platform.http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, token
        assert answer.json()["code"] == code
    assert (await platform.http.get("/v1/me")).json()["code"] == "unauthenticated"
    assert TEST_AUTH_SECRET not in (await platform.http.get("/v1/me")).text


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b'{"email": 5, "password": "x"}', 400, "validation_error"),
        (b'{"email": "a@b.co"}', 400, "validation_error"),
        (b'{"email": "a@b.co", "password": "' + b"x" * (1024 * 1024 + 10) + b'"}', 413, "body_too_large"),
    ],
)
async def test_bad_input_is_a_clear_4xx(platform: Stack, content: bytes, status: int, code: str) -> None:
    answer = await platform.http.post("/v1/auth/token", content=content, headers={"content-type": "application/json"})
    assert answer.status_code == status
    problem = answer.json()
    assert problem["code"] == code and problem["status"] == status
    assert {"type", "title", "detail", "request_id"} <= problem.keys()
    if code == "validation_error":
        assert problem["errors"] and all({"field", "message"} <= e.keys() for e in problem["errors"])


async def test_unknown_route_is_problem_json(platform: Stack) -> None:
    answer = await platform.http.get("/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


async def test_one_trace_spans_gateway_grpc_and_asyncpg(platform: Stack) -> None:
    headers = await platform.admin_headers()
    SPANS.clear()
    answer = await platform.http.get("/v1/me", headers=headers)
    assert answer.status_code == 200
    trace_id = answer.headers["traceparent"].split("-")[1]
    spans = [s for s in SPANS.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
    names = " | ".join(s.name for s in spans)
    # The gateway's HTTP span (INTERNAL here: the test's own httpx span is its local parent).
    assert any(s.name == "GET /v1/me" and s.kind.name in ("SERVER", "INTERNAL") for s in spans), names
    assert any(s.kind.name == "CLIENT" and "AccountsService/GetMe" in s.name for s in spans), names
    assert any(s.kind.name == "SERVER" and "AccountsService/GetMe" in s.name for s in spans), names
    assert any(s.attributes and s.attributes.get("db.system") == "postgresql" for s in spans), names
    # and nothing from this request escaped into another trace
    assert len({s.context.trace_id for s in SPANS.get_finished_spans() if "GetMe" in s.name}) == 1
