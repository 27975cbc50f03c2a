"""Every kind of object the sandbox serves validates against Stripe's OpenAPI schema and carries the
top-level keys of Stripe's sample object (sandbox/stripe/openapi/spec3.json and fixtures3.json)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
from stripe.params.terminal import LocationCreateParamsAddress

from sandbox.stripe.spec_extensions import NEWER_RESPONSE_VALUES
from sandbox.stripe.testing import RunningSandbox
from tests.fixtures.stripe_types import id_of

ADDRESS: LocationCreateParamsAddress = {
    "line1": "1 rue de la Paix",
    "city": "Paris",
    "postal_code": "75002",
    "country": "FR",
}
# Values newer than the 2020-08-27 spec that the current API returns (declared with their reasons).
NEWER_ENUM_VALUES = {value for values, _reason in NEWER_RESPONSE_VALUES.values() for value in values}


def _stripe_dir() -> Path:
    import sandbox.stripe

    return Path(sandbox.stripe.__file__).parent / "openapi"


def _tolerant(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: `nullable` becomes a null alternative; no closed objects."""
    if isinstance(node, list):
        return [_tolerant(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _tolerant(v) for k, v in node.items() if k not in ("nullable", "additionalProperties")}
    if node.get("additionalProperties") not in (None, False):
        converted["additionalProperties"] = _tolerant(node["additionalProperties"])
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def _spec() -> dict[str, Any]:
    spec = json.loads((_stripe_dir() / "spec3.json").read_text())
    return {"components": {"schemas": _tolerant(spec["components"]["schemas"])}}


@functools.cache
def _fixtures() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads((_stripe_dir() / "fixtures3.json").read_text())["resources"]
    return resources


def _schema_errors(name: str, instance: dict[str, Any]) -> list[str]:
    root = {**_spec(), "$ref": f"#/components/schemas/{name}"}
    validator = jsonschema.Draft4Validator(root)
    problems = []
    for error in validator.iter_errors(instance):
        leaves = [error]
        while leaves and any(leaf.context for leaf in leaves):
            leaves = [sub for leaf in leaves for sub in (leaf.context or [leaf])]
        for leaf in leaves:
            if leaf.validator == "enum" and leaf.instance in NEWER_ENUM_VALUES:
                continue
            problems.append(f"{'.'.join(map(str, leaf.absolute_path))}: {leaf.message[:200]}")
    return problems


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(stripe_sandbox: RunningSandbox) -> dict[str, dict[str, Any]]:
    """One object of every kind, as the SDK received it."""
    account = await stripe_sandbox.create_connected_account()
    client, platform = account.client, account.platform
    objects: dict[str, Any] = {}
    objects["account"] = await platform.v1.accounts.retrieve_async(account.id)
    objects["account_link"] = await platform.v1.account_links.create_async(
        params={
            "account": account.id,
            "refresh_url": "https://r",
            "return_url": "https://r",
            "type": "account_onboarding",
        }
    )
    objects["login_link"] = await platform.v1.accounts.login_links.create_async(account.id)
    direct = await client.v1.payment_intents.create_async(
        params={
            "amount": 5_000,
            "currency": "eur",
            "confirm": True,
            "payment_method": "pm_card_visa",
            "application_fee_amount": 300,
        }
    )
    objects["payment_intent"] = direct
    charge = await client.v1.charges.retrieve_async(id_of(direct.latest_charge))
    objects["payment_method"] = await client.v1.payment_methods.retrieve_async(id_of(charge.payment_method))
    objects["refund"] = await client.v1.refunds.create_async(params={"payment_intent": direct.id, "amount": 1_000})
    objects["charge"] = await client.v1.charges.retrieve_async(id_of(direct.latest_charge))
    objects["application_fee"] = await platform.v1.application_fees.retrieve_async(id_of(charge.application_fee))
    objects["fee_refund"] = await platform.v1.application_fees.refunds.create_async(
        id_of(charge.application_fee), params={"amount": 100}
    )
    destination = await platform.v1.payment_intents.create_async(
        params={
            "amount": 8_000,
            "currency": "eur",
            "confirm": True,
            "payment_method": "pm_card_visa",
            "transfer_data": {"destination": account.id},
        }
    )
    transfer_id = (await platform.v1.charges.retrieve_async(id_of(destination.latest_charge))).transfer
    objects["transfer_reversal"] = await platform.v1.transfers.reversals.create_async(
        id_of(transfer_id), params={"amount": 10}
    )
    objects["transfer"] = await platform.v1.transfers.retrieve_async(id_of(transfer_id))
    objects["balance"] = await client.v1.balance.retrieve_async()
    objects["balance_transaction"] = await client.v1.balance_transactions.retrieve_async(
        id_of(charge.balance_transaction)
    )
    objects["payout"] = await client.v1.payouts.create_async(params={"amount": 100, "currency": "eur"})
    objects["event"] = (await client.v1.events.list_async(params={"type": "charge.succeeded"})).data[0]
    objects["webhook_endpoint"] = await platform.v1.webhook_endpoints.create_async(
        params={"url": "http://127.0.0.1:9/hook", "enabled_events": ["payout.paid"]}
    )
    location = await client.v1.terminal.locations.create_async(params={"display_name": "Club", "address": ADDRESS})
    objects["terminal.location"] = location
    objects["terminal.connection_token"] = await client.v1.terminal.connection_tokens.create_async(
        params={"location": location.id}
    )
    reader = await client.v1.terminal.readers.create_async(
        params={"registration_code": "simulated-wpe", "label": "Till", "location": location.id}
    )
    intent = await client.v1.payment_intents.create_async(
        params={"amount": 700, "currency": "eur", "payment_method_types": ["card_present"]}  # type: ignore[typeddict-unknown-key]
    )
    await client.v1.terminal.readers.process_payment_intent_async(reader.id, params={"payment_intent": intent.id})
    objects["terminal.reader"] = await client.v1.test_helpers.terminal.readers.present_payment_method_async(reader.id)
    # Deleted markers of the webhook endpoint must not leak into others' tests.
    async with httpx.AsyncClient(base_url=stripe_sandbox.url) as http:
        await http.delete(
            f"/v1/webhook_endpoints/{objects['webhook_endpoint'].id}",
            headers={"Authorization": "Bearer sk_test_sandbox"},
        )
    return {name: obj.to_dict() for name, obj in objects.items()}


RESOURCES = [
    "account",
    "account_link",
    "login_link",
    "payment_intent",
    "payment_method",
    "charge",
    "refund",
    "application_fee",
    "fee_refund",
    "transfer",
    "transfer_reversal",
    "balance",
    "balance_transaction",
    "payout",
    "event",
    "webhook_endpoint",
    "terminal.location",
    "terminal.connection_token",
    "terminal.reader",
]


@pytest.mark.parametrize("name", RESOURCES)
def test_object_matches_spec_and_fixture(served: dict[str, dict[str, Any]], name: str) -> None:
    instance = served[name]
    assert instance.get("object") == name
    assert _schema_errors(name, instance) == []
    sample_keys = set(_fixtures()[name])
    # `secret` only appears when a webhook endpoint is created; the fixture shows a retrieved one.
    assert sorted(sample_keys - set(instance)) == []
