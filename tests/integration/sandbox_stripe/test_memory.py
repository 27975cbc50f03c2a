"""Bounded memory: objects packed and read back as they were, retention of events, idempotency
keys and the request log (config.py's caps and windows)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from sandbox.stripe import state as state_module
from sandbox.stripe.store import Store
from sandbox.stripe.testing import RunningSandbox, run_sandbox

AUTH = {"Authorization": "Bearer sk_test_memory"}
PAYMENT = {"amount": "1500", "currency": "eur", "confirm": "true", "payment_method": "pm_card_visa"}


@asynccontextmanager
async def _served(**config: Any) -> AsyncIterator[tuple[RunningSandbox, httpx.AsyncClient]]:
    """A sandbox of its own with `config`, and an HTTP client on it."""
    async with run_sandbox(**config) as sandbox, httpx.AsyncClient(base_url=sandbox.url, headers=AUTH) as http:
        yield sandbox, http


def test_a_packed_object_reads_back_as_it_was_and_a_held_one_keeps_its_changes() -> None:
    store = Store(live_limit=0)
    store.add("acct_1", {"id": "pi_1", "object": "payment_intent", "amount": 100, "metadata": {"k": "v"}})
    held = store.live("pi_1")
    assert held is not None
    store.compact(limit=0)
    assert store.memory_parts()["packed"] == 0  # someone holds it: it stays a live dict
    held["amount"] = 200
    del held
    store.compact(limit=0)
    assert store.memory_parts() | {"packed_bytes": 0} == {
        "objects": 1,
        "live": 0,
        "packed": 1,
        "blocks": 1,
        "packed_bytes": 0,
    }
    assert store.get("acct_1", "pi_1", "payment_intent") == {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 200,
        "metadata": {"k": "v"},
    }


async def test_objects_served_from_their_packed_form_are_the_ones_created(stripe_sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=stripe_sandbox.url, headers=AUTH) as http:
        created = (await http.post("/v1/payment_intents", data={**PAYMENT, "metadata[order]": "42"})).json()
        assert stripe_sandbox.state.store.memory_parts()["packed"] > 0  # no object stays live in tests
        assert (await http.get(f"/v1/payment_intents/{created['id']}")).json() == created
        refund = (await http.post("/v1/refunds", data={"payment_intent": created["id"], "amount": "500"})).json()
        charge = (await http.get(f"/v1/charges/{created['latest_charge']}")).json()
        assert charge["amount_refunded"] == 500 and charge["refunds"]["data"] == [refund]


async def test_events_are_kept_up_to_the_cap() -> None:
    async with _served(event_retention=3, live_objects=0) as (_, http):
        first = (await http.post("/v1/payment_intents", data=PAYMENT)).json()
        await http.post("/v1/payment_intents", data=PAYMENT)
        events = (await http.get("/v1/events", params={"limit": 100})).json()["data"]
        assert len(events) == 3  # the second payment's: created, charge.succeeded, succeeded
        assert first["id"] not in {event["data"]["object"]["id"] for event in events}
        oldest = await http.get("/v1/events", params={"limit": 1, "starting_after": events[-1]["id"]})
        assert oldest.json()["data"] == []


async def test_events_older_than_the_window_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _served(live_objects=0) as (sandbox, http):
        await http.post("/v1/payment_intents", data=PAYMENT)
        old = (await http.get("/v1/events")).json()["data"]
        assert len(old) == 3
        later = time.time() + sandbox.state.config.event_retention_seconds + 1
        with monkeypatch.context() as patch:  # an event emitted 30 days and a second later
            patch.setattr(state_module.time, "time", lambda: later)
            account = sandbox.state.account(sandbox.state.platform_id)
            assert account is not None
            new = sandbox.state.emit(sandbox.state.platform_id, "account.updated", account)
        assert [event["id"] for event in (await http.get("/v1/events")).json()["data"]] == [new["id"]]
        for event in old:
            assert (await http.get(f"/v1/events/{event['id']}")).status_code == 404


async def test_idempotency_keys_are_kept_up_to_the_cap() -> None:
    async with _served(idempotency_retention=2) as (_, http):
        answers = [
            await http.post("/v1/payment_intents", data=PAYMENT, headers={"Idempotency-Key": key})
            for key in ("k1", "k2", "k3")
        ]
        replay = await http.post("/v1/payment_intents", data=PAYMENT, headers={"Idempotency-Key": "k3"})
        assert replay.headers.get("idempotent-replayed") == "true"
        assert replay.json() == answers[2].json()
        # k1 is forgotten: the same key with other parameters is a new request, not a conflict.
        other = await http.post(
            "/v1/payment_intents", data={**PAYMENT, "amount": "2500"}, headers={"Idempotency-Key": "k1"}
        )
        assert other.status_code == 200 and other.json()["id"] != answers[0].json()["id"]


async def test_the_request_log_keeps_the_latest_entries() -> None:
    async with _served(request_log_size=3) as (_, http):
        for _ in range(5):
            await http.get("/v1/balance")
        await http.post("/v1/payment_intents", data=PAYMENT)
        entries = (await http.get("/_sandbox/requests", params={"limit": 100})).json()["data"]
        assert [entry["path"] for entry in entries] == ["/v1/payment_intents", "/v1/balance", "/v1/balance"]
