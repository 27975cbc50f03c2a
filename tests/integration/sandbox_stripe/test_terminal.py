"""Terminal: locations, connection tokens, simulated readers, process + present payment method."""

from __future__ import annotations

import pytest
import stripe
from stripe.params.terminal import LocationCreateParamsAddress

from sandbox.stripe.testing import ConnectedAccount
from tests.fixtures.stripe_types import given, id_of

ADDRESS: LocationCreateParamsAddress = {
    "line1": "1 rue de la Paix",
    "city": "Paris",
    "postal_code": "75002",
    "country": "FR",
}


async def test_locations_and_connection_tokens(connected: ConnectedAccount) -> None:
    client = connected.client
    location = await client.v1.terminal.locations.create_async(
        params={"display_name": "Club house", "address": ADDRESS}
    )
    assert location.id.startswith("tml_") and location.address.city == "Paris"
    updated = await client.v1.terminal.locations.update_async(location.id, params={"display_name": "Stand"})
    assert updated.display_name == "Stand"
    assert location.id in [loc.id for loc in (await client.v1.terminal.locations.list_async()).data]
    token = await client.v1.terminal.connection_tokens.create_async(params={"location": location.id})
    assert token.object == "terminal.connection_token" and token.secret.startswith("pst_test_")
    assert token.location == location.id
    unscoped = await client.v1.terminal.connection_tokens.create_async()
    assert unscoped.secret != token.secret
    with pytest.raises(stripe.InvalidRequestError):
        await connected.platform.v1.terminal.locations.retrieve_async(location.id)
    assert (await client.v1.terminal.locations.delete_async(location.id)).deleted


async def test_reader_processes_a_payment(connected: ConnectedAccount) -> None:
    client = connected.client
    location = await client.v1.terminal.locations.create_async(params={"display_name": "Till", "address": ADDRESS})
    with pytest.raises(stripe.InvalidRequestError) as info:
        await client.v1.terminal.readers.create_async(params={"registration_code": "bogus", "location": location.id})
    assert info.value.param == "registration_code"
    reader = await client.v1.terminal.readers.create_async(
        params={"registration_code": "simulated-wpe", "label": "Till 1", "location": location.id}
    )
    assert reader.id.startswith("tmr_") and reader.label == "Till 1" and reader.status == "online"
    assert reader.location == location.id and reader.action is None
    intent = await client.v1.payment_intents.create_async(
        params={  # type: ignore[typeddict-unknown-key]
            "amount": 1_500,
            "currency": "eur",
            "payment_method_types": ["card_present"],
            "capture_method": "manual",
        }
    )
    busy = await client.v1.terminal.readers.process_payment_intent_async(
        reader.id, params={"payment_intent": intent.id}
    )
    assert given(busy.action).type == "process_payment_intent" and given(busy.action).status == "in_progress"
    presented = await client.v1.test_helpers.terminal.readers.present_payment_method_async(reader.id)
    assert given(presented.action).status == "succeeded"
    processed = await client.v1.payment_intents.retrieve_async(intent.id)
    assert processed.status == "requires_capture" and id_of(processed.payment_method).startswith("pm_")
    captured = await client.v1.payment_intents.capture_async(intent.id)
    assert captured.status == "succeeded"
    events = await client.v1.events.list_async(params={"type": "terminal.reader.action_succeeded"})
    assert events.data[0].data.object.id == reader.id

    declined_intent = await client.v1.payment_intents.create_async(
        params={"amount": 900, "currency": "eur", "payment_method_types": ["card_present"]}  # type: ignore[typeddict-unknown-key]
    )
    await client.v1.terminal.readers.process_payment_intent_async(
        reader.id, params={"payment_intent": declined_intent.id}
    )
    failed = await client.v1.test_helpers.terminal.readers.present_payment_method_async(
        reader.id, params={"card_present": {"number": "4000000000000002"}}
    )
    assert given(failed.action).status == "failed" and given(failed.action).failure_code == "card_declined"
    assert (await client.v1.payment_intents.retrieve_async(declined_intent.id)).status == "requires_payment_method"

    readers = await client.v1.terminal.readers.list_async(params={"location": location.id})
    assert [r.id for r in readers.data] == [reader.id]
    assert (await client.v1.terminal.readers.delete_async(reader.id)).deleted
