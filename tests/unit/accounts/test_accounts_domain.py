"""Organisation rules and event ordering (pure units)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.accounts.domain import (
    Address,
    NewOrganization,
    PaymentPolicy,
    account_state_from_stripe,
    event_is_newer,
    validate_new_organization,
)
from services.accounts.organizations import PolicyCache

VALID = NewOrganization(
    name="Amicale",
    email="amicale@example.org",
    country="FR",
    business_type="non_profit",
    address=Address(line1="1 rue", city="Lyon", postal_code="69001", country=""),
)


def test_a_valid_organisation_has_no_errors() -> None:
    assert validate_new_organization(VALID, 100) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "fr"}, "country"),
        ({"business_type": "charity"}, "business_type"),
        ({"email": "nope"}, "email"),
        ({"name": " "}, "name"),
        ({"charge_model": "indirect"}, "charge_model"),
        ({"fee_percent_bps": 10_001}, "fee_percent_bps"),
        ({"fee_minimum": -1}, "fee_minimum"),
        ({"timezone": "Nowhere/Town"}, "timezone"),
        ({"bank_account_iban": "123"}, "bank_account_iban"),
        ({"default_currency": "EURO"}, "default_currency"),
        ({"address": Address(line1="", city="Lyon", postal_code="1", country="")}, "address.line1"),
        ({"address": Address(line1="a", city="Lyon", postal_code="1", country="DE")}, "address.country"),
    ],
)
def test_invalid_fields_are_named(change: dict[str, object], field: str) -> None:
    errors = validate_new_organization(replace(VALID, **change), 100)  # type: ignore[arg-type]
    assert field in {e.field for e in errors}


def test_event_ordering_with_one_second_resolution() -> None:
    stored = datetime(2026, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    assert event_is_newer(stored + timedelta(seconds=1), stored) is True
    assert event_is_newer(stored.replace(microsecond=0), None) is True
    assert event_is_newer(stored.replace(microsecond=0), stored) is None  # same second: ask Stripe
    assert event_is_newer(stored.replace(microsecond=0) - timedelta(seconds=1), stored) is False
    assert event_is_newer(stored - timedelta(seconds=1), stored) is False


def test_account_state_from_a_stripe_account() -> None:
    at = datetime.now(UTC)
    state = account_state_from_stripe(
        {
            "id": "acct_1",
            "type": "express",
            "charges_enabled": True,
            "payouts_enabled": False,
            "details_submitted": True,
            "requirements": {"currently_due": ["external_account"]},
        },
        at,
    )
    assert (state.account_id, state.charges_enabled, state.payouts_enabled) == ("acct_1", True, False)
    assert state.requirements_due == ("external_account",) and state.state_at == at
    assert account_state_from_stripe({"id": "acct_2"}, None).requirements_due == ()


def test_policy_cache_expires_and_invalidates() -> None:
    policy = PaymentPolicy("org", "acct", "direct", 0, 0, True, "FR", "eur", "Europe/Paris")
    cache = PolicyCache(ttl=60)
    cache.put(policy)
    assert cache.get("org") == policy
    cache.invalidate("org")
    assert cache.get("org") is None
    expired = PolicyCache(ttl=-1)
    expired.put(policy)
    assert expired.get("org") is None
