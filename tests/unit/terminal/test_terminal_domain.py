"""Location validation, where Terminal objects live at Stripe, and reader events (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runtime.addresses import Address, normalize_address
from services.terminal.domain import reader_update, stripe_scope, validate_location

PARIS = Address(line1="1 rue de Rivoli", city="Paris", postal_code="75001", country="FR")


def test_a_valid_location_has_no_errors() -> None:
    assert validate_location("Stand", PARIS) == []


@pytest.mark.parametrize(
    ("display_name", "address", "fields"),
    [
        ("", PARIS, {"display_name"}),
        ("Stand", Address("", "", "", "FR"), {"address.line1", "address.city", "address.postal_code"}),
        ("Stand", Address("1 rue", "Paris", "750", "FR"), {"address.postal_code"}),
        ("Stand", Address("1 rue", "Paris", "75001", "France"), {"address.country"}),
        ("x" * 101, PARIS, {"display_name"}),
    ],
)
def test_invalid_locations_name_every_field(display_name: str, address: Address, fields: set[str]) -> None:
    assert {e.field for e in validate_location(display_name, address)} == fields


def test_address_takes_the_organisation_country_by_default() -> None:
    address = normalize_address(Address(" 1 rue ", "Lyon", "69001", ""), "FR")
    assert address.country == "FR" and address.line1 == "1 rue"


def test_direct_objects_live_on_the_connected_account_destination_on_the_platform() -> None:
    assert stripe_scope("direct", "acct_1", "org").stripe_account == "acct_1"
    destination = stripe_scope("destination", "acct_1", "org")
    assert destination.stripe_account is None
    assert destination.metadata == {"organization_id": "org"}


def test_reader_update_from_an_event_object() -> None:
    update = reader_update(
        {"id": "tmr_1", "object": "terminal.reader", "status": "offline", "last_seen_at": 1_700_000_000_000}
    )
    assert update is not None
    assert update.status == "offline"
    assert update.last_seen_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert reader_update({"id": "pi_1", "object": "payment_intent"}) is None
    weird = reader_update({"id": "tmr_2", "object": "terminal.reader", "status": "exploded"})
    assert weird is not None and weird.status == "unknown" and weird.last_seen_at is None
