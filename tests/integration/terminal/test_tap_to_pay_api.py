"""Tap to Pay check, the certified Android list and the OS floors, through the gateway over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.fixtures.stack import Stack


def agent_headers(stack: Stack) -> dict[str, str]:
    """A signed agent token: the device rules need no organisation when the country is given."""
    token = stack.signer.issue(str(uuid.uuid4()), str(uuid.uuid4()), "agent")
    return {"Authorization": f"Bearer {token}"}


async def check(stack: Stack, headers: dict[str, str], **body: Any) -> Any:
    return await stack.http.post("/v1/devices/tap-to-pay/check", json=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "supported"),
    [
        ({"platform": "ios", "model": "iPhone14,2", "os_version": "17.1", "country": "FR"}, True),
        ({"platform": "ios", "model": "iPhone10,3", "os_version": "17.1", "country": "FR"}, False),
        ({"platform": "ios", "model": "iPhone14,2", "os_version": "16.7", "country": "FR"}, False),
        ({"platform": "ios", "model": "iPhone14,2", "os_version": "16.7", "country": "US"}, True),
        ({"platform": "ios", "model": "iPhone15,2", "os_version": "18.0b1", "country": "FR"}, False),
        ({"platform": "ios", "model": "iPhone15,2", "os_version": "18.0", "country": "FR", "is_beta": True}, False),
        ({"platform": "android", "model": "Pixel 8", "manufacturer": "Google", "os_version": "14"}, True),
        ({"platform": "android", "model": "Pixel 8", "os_version": "13"}, False),
        ({"platform": "android", "model": "Moto Z2 Play", "manufacturer": "Motorola", "os_version": "14"}, False),
    ],
)
async def test_check_answers(stack: Stack, body: dict[str, Any], supported: bool) -> None:
    answer = await check(stack, agent_headers(stack), **body)
    assert answer.status_code == 200, answer.text
    verdict = answer.json()
    assert verdict["supported"] is supported
    assert verdict["reason"]
    if supported:
        assert verdict["alternative"] is None
    else:
        assert verdict["alternative"]


async def test_uncertified_android_names_the_alternative(stack: Stack) -> None:
    verdict = (await check(stack, agent_headers(stack), platform="android", model="Moto G", os_version="14")).json()
    assert verdict["supported"] is False
    assert "certified" in verdict["reason"]
    assert "card reader" in verdict["alternative"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"platform": "windows", "model": "Lumia", "os_version": "10"}, "unsupported_platform"),
        ({"platform": "ios", "model": "iPhone14,2", "os_version": "seventeen", "country": "FR"}, "invalid_os_version"),
        ({"platform": "android", "model": "Pixel 8", "os_version": "14..2"}, "invalid_os_version"),
        ({"platform": "ios", "model": "iPhone14,2"}, "validation_error"),
        ({"platform": "ios", "model": "iPhone14,2", "os_version": "17.1", "is_beta": "no"}, "validation_error"),
    ],
)
async def test_bad_checks_are_400(stack: Stack, body: dict[str, Any], code: str) -> None:
    answer = await check(stack, agent_headers(stack), **body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code


async def test_check_needs_a_token(stack: Stack) -> None:
    answer = await check(stack, {}, platform="ios", model="iPhone14,2", os_version="17.1", country="FR")
    assert answer.status_code == 401


async def test_android_list_is_seeded_and_open_to_every_member(stack: Stack) -> None:
    answer = await stack.http.get("/v1/devices/tap-to-pay/android", headers=agent_headers(stack))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["min_os_version"] == "13"
    models = {d["model_identifier"]: d for d in body["data"]}
    assert models["Pixel 8"]["certified"] is True and models["Pixel 8"]["manufacturer"] == "Google"
    assert (await stack.http.get("/v1/devices/tap-to-pay/android")).status_code == 401


async def test_platform_admin_keeps_the_android_list_current(stack: Stack) -> None:
    admin = await stack.admin_headers()
    agent = agent_headers(stack)
    model = f"FP5-{uuid.uuid4().hex[:6]}"
    path = f"/v1/devices/tap-to-pay/android/{model}"
    body = {"manufacturer": "Fairphone", "marketing_name": "Fairphone 5", "min_os_version": "13"}

    assert (await stack.http.put(path, json=body, headers=agent)).status_code == 403
    before = await check(stack, agent, platform="android", model=model, os_version="14")
    assert before.json()["supported"] is False

    created = await stack.http.put(path, json=body, headers=admin)
    assert created.status_code == 200, created.text
    assert created.json()["certified"] is True and created.json()["model_identifier"] == model
    after = (await check(stack, agent, platform="android", model=model.lower(), os_version="14")).json()
    assert after["supported"] is True and "Fairphone 5" in after["reason"]

    withdrawn = await stack.http.put(path, json={**body, "certified": False}, headers=admin)
    assert withdrawn.status_code == 200 and withdrawn.json()["certified"] is False
    assert (await check(stack, agent, platform="android", model=model, os_version="14")).json()["supported"] is False

    listed = (await stack.http.get("/v1/devices/tap-to-pay/android", headers=agent)).json()["data"]
    assert [d["certified"] for d in listed if d["model_identifier"] == model] == [False]

    bad = await stack.http.put(path, json={"min_os_version": "fourteen"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_os_version"


async def test_platform_admin_sets_os_floors(stack: Stack) -> None:
    admin = await stack.admin_headers()
    agent = agent_headers(stack)
    iphone = {"platform": "ios", "model": "iPhone14,2", "country": "LU"}
    assert (await check(stack, agent, os_version="17.1", **iphone)).json()["supported"] is False  # not offered in LU

    put = "/v1/devices/tap-to-pay/os-floors/ios"
    assert (
        await stack.http.put(put, json={"country": "LU", "min_os_version": "17.2"}, headers=agent)
    ).status_code == 403
    answer = await stack.http.put(put, json={"country": "LU", "min_os_version": "17.2"}, headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["country"] == "LU" and answer.json()["min_os_version"] == "17.2"

    assert (await check(stack, agent, os_version="17.1", **iphone)).json()["supported"] is False
    assert (await check(stack, agent, os_version="17.2", **iphone)).json()["supported"] is True

    floors = (await stack.http.get("/v1/devices/tap-to-pay/os-floors", headers=agent)).json()["data"]
    assert {"platform": "ios", "country": "LU", "min_os_version": "17.2"}.items() <= next(
        f for f in floors if f["platform"] == "ios" and f["country"] == "LU"
    ).items()
    assert any(f == {**f, "platform": "android", "country": "*", "min_os_version": "13"} for f in floors)

    no_country = await stack.http.put(put, json={"min_os_version": "17.0"}, headers=admin)
    assert no_country.status_code == 400
    unknown = await stack.http.put(
        "/v1/devices/tap-to-pay/os-floors/symbian", json={"min_os_version": "1"}, headers=admin
    )
    assert unknown.status_code == 400
