"""Routing of outside events to their owner, and the Event handed over (pure)."""

from __future__ import annotations

import orjson
import pytest

from gateway.webhooks.registration import webhook_url
from gateway.webhooks.routing import UNKNOWN_OWNER, InvalidEvent, owner_of, qonto_event, stripe_event


@pytest.mark.parametrize(
    ("event_type", "owner"),
    [
        ("account.updated", "accounts"),
        ("account.application.deauthorized", "accounts"),
        ("account.external_account.created", "accounts"),
        ("capability.updated", "accounts"),
        ("payment_intent.succeeded", "payments"),
        ("payment_intent.amount_capturable_updated", "payments"),
        ("charge.refunded", "payments"),
        ("charge.refund.updated", "payments"),
        ("charge.dispute.created", "payments"),
        ("refund.created", "payments"),
        ("payout.paid", "banking"),
        ("payout.failed", "banking"),
        ("terminal.reader.action_succeeded", "terminal"),
        ("terminal.reader.action_failed", "terminal"),
        ("issuing_card.created", UNKNOWN_OWNER),
        ("accounts.updated", UNKNOWN_OWNER),  # a prefix match needs the dot
        ("payoutpaid", UNKNOWN_OWNER),
        ("", UNKNOWN_OWNER),
    ],
)
def test_stripe_types_route_to_their_owner(event_type: str, owner: str) -> None:
    assert owner_of("stripe", event_type) == owner


@pytest.mark.parametrize(
    ("event_type", "owner"),
    [
        ("transaction.created", "banking"),
        ("transaction.updated", "banking"),
        ("v1/transactions", "banking"),
        ("membership.created", UNKNOWN_OWNER),
        ("payout.paid", UNKNOWN_OWNER),
    ],
)
def test_qonto_types_route_to_their_owner(event_type: str, owner: str) -> None:
    assert owner_of("qonto", event_type) == owner


def test_a_stripe_event_keeps_its_raw_body_and_routing_fields() -> None:
    raw = b'{"id":"evt_1","type":"payment_intent.succeeded","account":"acct_9","created":1700000000,"data":{"object":{"amount":1999}}}'
    routed = stripe_event(raw)
    assert routed.owner == "payments"
    assert routed.event.source == "stripe" and routed.event_id == "evt_1" and routed.type == "payment_intent.succeeded"
    assert routed.event.account == "acct_9"
    assert routed.event.created_at.seconds == 1700000000
    assert routed.event.payload == raw


def test_a_platform_event_has_no_account_and_a_missing_created_stays_unset() -> None:
    routed = stripe_event(orjson.dumps({"id": "evt_2", "type": "payout.paid", "account": None, "created": "soon"}))
    assert routed.event.account == "" and not routed.event.HasField("created_at")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"nope",
        b"[]",
        b'"evt"',
        b'{"id": "evt_1"}',
        b'{"type": "a.b"}',
        b'{"id": 5, "type": "a.b"}',
        b'{"id": " ", "type": "a.b"}',
    ],
)
def test_events_without_id_or_type_are_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        stripe_event(raw)


def test_a_qonto_event_uses_event_type_and_created_at() -> None:
    raw = orjson.dumps(
        {
            "id": "u-1",
            "event_id": "u-1",
            "type": "v1/transactions",
            "event_type": "transaction.updated",
            "created_at": "2026-01-02T03:04:05.678Z",
            "data": {"amount_cents": 100},
        }
    )
    routed = qonto_event(raw)
    assert (routed.owner, routed.event.source, routed.event_id, routed.type) == (
        "banking",
        "qonto",
        "u-1",
        "transaction.updated",
    )
    assert routed.event.created_at.ToJsonString() == "2026-01-02T03:04:05.678Z"
    assert routed.event.payload == raw


def test_a_qonto_event_in_qontos_own_shape_still_routes() -> None:
    routed = qonto_event(b'{"id": "u-2", "type": "v1/transactions", "created_at": "not a date"}')
    assert (routed.owner, routed.event_id, routed.type) == ("banking", "u-2", "v1/transactions")
    assert not routed.event.HasField("created_at")


def test_webhook_url_appends_the_path_once() -> None:
    assert webhook_url("http://127.0.0.1:8000/", "/webhooks/stripe") == "http://127.0.0.1:8000/webhooks/stripe"
    assert webhook_url("https://x.test/webhooks/qonto", "/webhooks/qonto") == "https://x.test/webhooks/qonto"


def test_recent_events_forget_the_oldest_past_capacity() -> None:
    from gateway.webhooks.recent import RecentEvents

    recent = RecentEvents(capacity=2)
    recent.add("stripe", "evt_1", "accounts", "applied")
    recent.add("stripe", "evt_2", "payments", "ignored")
    assert recent.get("stripe", "evt_1") == ("accounts", "applied")
    assert recent.get("qonto", "evt_1") is None
    recent.add("stripe", "evt_3", "banking", "pending")
    assert len(recent) == 2 and recent.get("stripe", "evt_1") is None
    assert recent.get("stripe", "evt_3") == ("banking", "pending")
