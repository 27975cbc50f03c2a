"""Which service owns an outside event, and the `collect.events.v1.Event` handed to it.

The gateway reads only what routing needs (id, type, connected account, creation time) and
passes the raw signed body on untouched; amounts and objects are the owner's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from collect.events.v1 import events_pb2 as pb

from runtime.proto import to_timestamp

STRIPE, QONTO = "stripe", "qonto"

# Recorded and acknowledged by this owner when no service claims the type, so nothing is lost
# and a later replay can pick them up.
UNKNOWN_OWNER = "accounts"

# Longest prefix wins; a prefix ends with "." (or is a whole type).
_STRIPE_OWNERS: dict[str, str] = {
    "account.": "accounts",
    "capability.": "accounts",
    "person.": "accounts",
    "payment_intent.": "payments",
    "charge.": "payments",
    "refund.": "payments",
    "payout.": "banking",
    "terminal.reader.": "terminal",
}
# The Stripe event types the services apply: what the platform's endpoints subscribe to, so that
# Stripe does not deliver (and the platform record) events nobody acts on, such as
# payment_intent.created for every sale.
SUBSCRIBED_STRIPE_EVENTS: tuple[str, ...] = (
    "account.updated",
    "account.application.deauthorized",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.processing",
    "payment_intent.amount_capturable_updated",
    "charge.succeeded",
    "charge.captured",
    "charge.failed",
    "charge.refunded",
    "charge.updated",
    "charge.refund.updated",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "charge.dispute.closed",
    "payout.created",
    "payout.updated",
    "payout.paid",
    "payout.failed",
    "payout.canceled",
    "terminal.reader.action_succeeded",
    "terminal.reader.action_failed",
)
_QONTO_OWNERS: dict[str, str] = {
    "transaction.": "banking",
    "v1/transactions": "banking",
}


class InvalidEvent(ValueError):
    """The body is not an event we can route (not JSON, no id or no type)."""


@dataclass(frozen=True)
class RoutedEvent:
    owner: str
    event: pb.Event

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def type(self) -> str:
        return self.event.type


def owner_of(source: str, event_type: str) -> str:
    """The service whose inbox records events of this type (UNKNOWN_OWNER when none claims it)."""
    table = _STRIPE_OWNERS if source == STRIPE else _QONTO_OWNERS if source == QONTO else {}
    best, owner = -1, UNKNOWN_OWNER
    for prefix, service in table.items():
        matches = event_type.startswith(prefix) if prefix.endswith(".") else event_type == prefix
        if matches and len(prefix) > best:
            best, owner = len(prefix), service
    return owner


def _document(raw_body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(raw_body)
    except orjson.JSONDecodeError:
        raise InvalidEvent("the body is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidEvent("the body is not a JSON object")
    return document


def _text(document: dict[str, Any], *names: str) -> str:
    for name in names:
        value = document.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def stripe_event(raw_body: bytes) -> RoutedEvent:
    """A Stripe event (platform or Connect) routed by its type."""
    document = _document(raw_body)
    event_id, event_type = _text(document, "id"), _text(document, "type")
    if not event_id or not event_type:
        raise InvalidEvent("the event has no id or no type")
    created = document.get("created")
    event = pb.Event(
        source=STRIPE,
        event_id=event_id,
        type=event_type,
        account=_text(document, "account"),
        payload=raw_body,
    )
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
        event.created_at.FromSeconds(created)
    return RoutedEvent(owner_of(STRIPE, event_type), event)


def qonto_event(raw_body: bytes) -> RoutedEvent:
    """A Qonto webhook (`v1/transactions`: `event_type` transaction.created / transaction.updated)."""
    document = _document(raw_body)
    event_id = _text(document, "event_id", "id")
    event_type = _text(document, "event_type", "type")
    if not event_id or not event_type:
        raise InvalidEvent("the event has no id or no type")
    event = pb.Event(source=QONTO, event_id=event_id, type=event_type, payload=raw_body)
    created = _text(document, "created_at")
    if created:
        try:
            stamp = to_timestamp(datetime.fromisoformat(created.replace("Z", "+00:00")))
        except ValueError:
            stamp = None
        if stamp is not None:
            event.created_at.CopyFrom(stamp)
    return RoutedEvent(owner_of(QONTO, event_type), event)
