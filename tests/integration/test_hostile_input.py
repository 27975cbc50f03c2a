"""No input reaches a 500: every route, as a platform admin and as an agent, with hostile values in
its path, its query and its body — integers past int64, NUL and other control characters, non-ASCII
digits, crafted cursors, dates outside the supported range, wrong JSON types."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from starlette.routing import Route

from gateway.app import ROUTE_MODULES
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.raw_http import MALFORMED_REQUESTS, send_raw
from tests.fixtures.stack import Stack


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


HOSTILE_TEXT = [
    "a\x00b",
    "\x07",
    "²",
    "١٢",  # Arabic-Indic digits: isdigit() but not ASCII
    "9" * 30,
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "x" * 1000,
    _cursor(["2026-01-01T00:00:00", "not-a-uuid"]),
    _cursor(["0001-01-01T00:00:00+14:00", str(uuid.uuid4())]),
    _cursor([1, 2, 3]),
]
HOSTILE_JSON: list[Any] = [2**63, -(2**63) - 1, 10**40, 1e308, -1, True, None, [], {}, "\x00", "²", "x" * 5000]
# Sent one field at a time beside plausible others, so that they reach the services.
REACHING: list[Any] = [2**63, -(2**63) - 1, "a\x00b", "0001-01-01T00:00:00+14:00", {}]
QUERY_NAMES = [
    "limit",
    "cursor",
    "from",
    "to",
    "date",
    "organization_id",
    "member_id",
    "status",
    "method",
    "reconciled",
    "format",
    "email",
    "refresh",
]
_FIELD = re.compile(r"""(?:fields|rule|entity|address|item|f)\.\w+\(\s*"(\w+)"|raw\.get\("(\w+)"\)""")


def _field_names(route: Route) -> list[str]:
    """The body fields a route's handler reads (from its source: the handlers name them literally)."""
    source = inspect.getsource(route.endpoint)
    return sorted({a or b for a, b in _FIELD.findall(source)})


def _routes() -> Iterator[tuple[str, str, list[str]]]:
    for route in (route for module in ROUTE_MODULES for route in module.routes):
        if not isinstance(route, Route) or route.path.startswith(("/webhooks", "/healthz", "/readyz", "/openapi")):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield method, route.path, _field_names(route)


def _paths(path: str, ids: dict[str, str]) -> list[str]:
    """The path with real ids, then with hostile ones in every parameter."""
    names = re.findall(r"\{(\w+)\}", path)
    if not names:
        return [path]
    real = path
    for name in names:
        real = real.replace("{" + name + "}", ids.get(name, str(uuid.uuid4())))
    hostile = [re.sub(r"\{\w+\}", bad, path) for bad in ("%00", "%C2%B2", "x" * 300, "%07")]
    return [real, *hostile]


def _bodies(names: list[str]) -> Iterator[Any]:
    yield from ([], "text", 12)
    for value in HOSTILE_JSON:
        # Every field hostile at once (the gateway collects every field error), nested shapes too.
        body: dict[str, Any] = dict.fromkeys(names, value)
        for nested in ("address", "transactions", "rules", "entities", "metadata", "evidence"):
            if nested in names:
                inner = dict.fromkeys(names, value)
                body[nested] = [inner] if nested in ("transactions", "rules", "entities") else inner
        yield body
    for value in REACHING:
        for name in names:
            yield {**_PLAUSIBLE, name: value}


_PLAUSIBLE: dict[str, Any] = {
    "amount": 1500,
    "currency": "eur",
    "method": "cash",
    "name": "Someone",
    "email": "someone@example.test",
    "role": "agent",
    "password": "a-long-password-123",
    "local_id": "1",
    "created_at": "2026-01-01T10:00:00Z",
}


@pytest.fixture(scope="module")
async def target(stack: Stack) -> tuple[OrgContext, dict[str, str]]:
    org = await onboarded_organization(stack)
    now = datetime.now(UTC).isoformat()
    answer = await stack.http.post(
        "/v1/payments/offline-batch",
        headers=org.agent_headers,
        json={"transactions": [{"local_id": uuid.uuid4().hex, "amount": 500, "method": "cash", "created_at": now}]},
    )
    assert answer.status_code == 200, answer.text
    payment_id = answer.json()["results"][0]["payment_id"]
    assert payment_id, answer.text
    ids = {"org_id": org.id, "member_id": org.agent_id, "payment_id": payment_id}
    return org, ids


@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", ["platform_admin", "agent"])
async def test_no_input_reaches_a_server_error(
    stack: Stack, target: tuple[OrgContext, dict[str, str]], role: str
) -> None:
    org, ids = target
    headers = await stack.admin_headers() if role == "platform_admin" else org.agent_headers
    failures: list[str] = []
    sent = 0

    async def send(method: str, url: str, **kwargs: Any) -> None:
        nonlocal sent
        sent += 1
        answer = await stack.http.request(
            method, url, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, **kwargs
        )
        # 502/503 are outside failures (a bank sync hurried by this test may be rate-limited by Qonto).
        if answer.status_code >= 500 and answer.status_code not in (502, 503):
            failures.append(f"{method} {url} {kwargs} -> {answer.status_code} {answer.text[:200]}")

    requests: list[tuple[str, str, dict[str, Any]]] = []
    for method, path, names in _routes():
        real, *hostile_paths = _paths(path, ids)
        requests += [(method, url, {}) for url in hostile_paths]
        for value in HOSTILE_TEXT:
            # Every name at once (the gateway reports every field), then the cursor, which is checked
            # only once the others pass.
            requests.append((method, real, {"params": dict.fromkeys(QUERY_NAMES, value)}))
            if method == "GET":
                requests.append((method, real, {"params": {"cursor": value}}))
        if method in ("POST", "PUT", "PATCH"):
            # json, not orjson: orjson refuses integers past 64 bits, which is the point here.
            requests += [(method, real, {"content": json.dumps(body)}) for body in _bodies(names)]
    gate = asyncio.Semaphore(8)

    async def bounded(method: str, url: str, kwargs: dict[str, Any]) -> None:
        async with gate:
            await send(method, url, **kwargs)

    await asyncio.gather(*(bounded(*request) for request in requests))
    assert sent > 1500
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(failures[:40])


async def test_a_method_not_allowed_names_the_allowed_ones(stack: Stack) -> None:
    answer = await stack.http.delete("/v1/payments")
    assert answer.status_code == 405
    assert answer.json()["code"] == "method_not_allowed"
    assert set(answer.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize("malformed", list(MALFORMED_REQUESTS))
async def test_a_request_the_server_cannot_parse_is_answered_as_problem_json(stack: Stack, malformed: str) -> None:
    answer = await send_raw(stack.gateway_url, MALFORMED_REQUESTS[malformed])
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = orjson.loads(answer.body)
    assert problem["status"] == 400 and problem["code"] == "malformed_request" and problem["request_id"]
