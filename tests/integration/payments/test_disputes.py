"""Disputes through the real parts: a card paid with Stripe's dispute test card under each charge
model, Stripe's `charge.dispute.*` events delivered shuffled and duplicated, evidence submitted
through the API, won and lost outcomes applied once, and the money on the right account."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from collect.payments.v1 import payments_pb2, payments_pb2_grpc

from services.payments import disputes
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import (
    create_payment,
    deliver_shuffled,
    disputed_payment,
    key,
    listed_dispute,
    settle,
    stripe_dispute,
    stripe_options,
    submit_evidence,
)

DISPUTE_FEE = 1500  # the sandbox's, as Stripe's


async def totals(stack: Stack, org: OrgContext) -> dict[str, Any]:
    answer = await stack.http.get(f"/v1/organizations/{org.id}/stats", headers=org.admin_headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["totals"]
    return result


async def test_a_direct_charge_dispute_debits_the_organisation_and_a_win_is_applied_once(stack: Stack) -> None:
    org = await onboarded_organization(stack)
    payment = await disputed_payment(stack, org, "direct", 4_000)
    account = org.stripe_account_id
    await deliver_shuffled(stack, payment, account, seed=1)
    dispute = await listed_dispute(stack, org.admin_headers, payment["id"])
    assert dispute["status"] == "needs_response" and dispute["reason"] == "fraudulent"
    assert (dispute["amount"], dispute["currency"], dispute["charge_model"]) == (4_000, "eur", "direct")
    assert dispute["evidence_due_by"] and dispute["evidence_submissions"] == 0
    # The connected account was debited (Stripe did it): recorded, nothing reversed.
    assert (dispute["withdrawn"], dispute["dispute_fee"], dispute["transfer_reversed"]) == (4_000, DISPUTE_FEE, 0)
    withdrawal = await (
        stack.extras["stripe_sandbox"]
        .client()
        .v1.balance_transactions.list_async(params={"limit": 100}, options=stripe_options(account))
    )
    assert [t.amount for t in withdrawal.data if t.source == dispute["stripe_dispute_id"]] == [-4_000]

    # Agents do not see disputes; another organisation's is not found.
    assert (await stack.http.get("/v1/disputes", headers=org.agent_headers)).status_code == 403
    other = await onboarded_organization(stack)
    theirs = await stack.http.get("/v1/disputes", headers=other.admin_headers)
    assert all(d["id"] != dispute["id"] for d in theirs.json()["data"])
    hidden = await stack.http.post(
        f"/v1/disputes/{dispute['id']}/evidence", headers=other.admin_headers, json={"evidence": {"receipt": "x"}}
    )
    assert hidden.status_code == 404 and hidden.json()["code"] == "dispute_not_found"

    # Each text takes Stripe's 20,000 characters (the proto's bound, not the gateway's 500 default).
    evidence = f"/v1/disputes/{dispute['id']}/evidence"
    staged = await stack.http.post(
        evidence, headers=org.admin_headers, json={"evidence": {"refund_policy": "x" * 20_000}, "submit": False}
    )
    assert staged.status_code == 200 and staged.json()["evidence_submissions"] == 0, staged.text
    too_long = await stack.http.post(
        evidence, headers=org.admin_headers, json={"evidence": {"refund_policy": "x" * 20_001}}
    )
    assert [e["field"] for e in too_long.json()["errors"]] == ["evidence.refund_policy"]
    # The service's runtime holds the same bound against a gRPC caller.
    async with grpc.aio.insecure_channel(stack.target("payments")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await payments_pb2_grpc.PaymentsServiceStub(channel).SubmitDisputeEvidence(
                payments_pb2.SubmitDisputeEvidenceRequest(
                    dispute_id=dispute["id"], evidence={"refund_policy": "x" * 20_001}
                ),
                metadata=(("authorization", org.admin_headers["Authorization"]),),
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    submitted = await submit_evidence(stack, org, dispute, "winning_evidence")
    assert submitted["status"] == "under_review" and submitted["evidence_submissions"] == 1

    async def audited() -> list[dict[str, Any]]:
        answer = await stack.http.get(
            "/v1/audit", headers=org.admin_headers, params={"action": "dispute.evidence_submitted"}
        )
        return [e for e in answer.json()["data"] if e["targets"].get("dispute_id") == dispute["id"]]

    # Who gave evidence is on the trail: the fields named, never their content (the customer's data).
    [entry] = await eventually(audited, "the evidence submission's audit entry")
    assert entry["actor_id"] == org.admin_id and entry["after"]["fields"] == [
        "product_description",
        "uncategorized_text",
    ]
    assert "winning_evidence" not in str(entry)
    await stripe_dispute(stack, payment, account, "won")
    for seed in (2, 3):
        await deliver_shuffled(stack, payment, account, seed)
    won = await listed_dispute(stack, org.admin_headers, payment["id"])
    assert (won["status"], won["reinstated"], won["withdrawn"]) == ("won", 4_000, 4_000)
    figures = await totals(stack, org)
    assert (figures["disputed_count"], figures["disputed"], figures["disputes_lost"]) == (1, 4_000, 0)
    agent = await stack.http.get(f"/v1/members/{org.agent_id}/stats", headers=org.admin_headers)
    assert agent.json()["totals"]["disputed"] == 4_000  # the agent who made the sale
    late = await stack.http.post(
        f"/v1/disputes/{dispute['id']}/evidence", headers=org.admin_headers, json={"evidence": {"receipt": "x"}}
    )
    assert late.status_code == 409 and late.json()["code"] == "dispute_not_open"


async def test_a_destination_charge_dispute_reverses_the_transfer_and_a_win_gives_it_back_once(stack: Stack) -> None:
    org = await onboarded_organization(stack, charge_model="destination", fee_percent_bps=1000)
    payment = await disputed_payment(stack, org, "destination", 6_000)
    await deliver_shuffled(stack, payment, None, seed=4)
    await deliver_shuffled(stack, payment, None, seed=5)
    dispute = await listed_dispute(stack, org.admin_headers, payment["id"])
    # The platform was debited; the transfer to the organisation (the amount less the fee) is reversed, once.
    assert (dispute["withdrawn"], dispute["dispute_fee"], dispute["transfer_reversed"]) == (6_000, DISPUTE_FEE, 5_400)
    client = stack.extras["stripe_sandbox"].client()
    charge = await client.v1.charges.list_async(params={"payment_intent": payment["stripe_payment_intent_id"]})
    transfer_id = charge.data[0].transfer
    assert isinstance(transfer_id, str)
    transfer = await client.v1.transfers.retrieve_async(transfer_id)
    assert transfer.amount_reversed == 5_400 and len(transfer.reversals.data) == 1

    await submit_evidence(stack, org, dispute, "winning_evidence")
    await stripe_dispute(stack, payment, None, "won")
    for seed in (6, 7, 8):
        await deliver_shuffled(stack, payment, None, seed)
    won = await listed_dispute(stack, org.admin_headers, payment["id"])
    # Won and reinstated whether or not the platform could already pay the organisation back (it
    # bore the dispute fee): a transfer Stripe refused for lack of funds is tried again by the sweeper.
    assert (won["status"], won["reinstated"]) == ("won", 6_000)
    await client.v1.payment_intents.create_async(
        params={"amount": 20_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
    )
    sandbox = stack.extras["stripe_sandbox"]
    async with httpx.AsyncClient() as http:  # the platform's new funds become available (days pass)
        released = await http.post(
            f"{sandbox.url}/_sandbox/balance/release", json={"account": sandbox.state.platform_id}
        )
        assert released.status_code == 200
    await disputes.sweep_transfers(stack.deps["payments"].extras["context"], older_than_seconds=0)
    await deliver_shuffled(stack, payment, None, seed=9)
    won = await listed_dispute(stack, org.admin_headers, payment["id"])
    assert won["transfer_returned"] == 5_400
    given_back = await client.v1.transfers.list_async(params={"transfer_group": f"dispute_{won['stripe_dispute_id']}"})
    assert [(t.amount, t.destination) for t in given_back.data] == [(5_400, org.stripe_account_id)]
    assert len((await client.v1.transfers.retrieve_async(transfer_id)).reversals.data) == 1
    # Both moves are on the organisation's audit trail, once each, made by a service (an event
    # applied, or the sweeper), with the Stripe ids that prove them.
    reversed_entry = await _transfer_entry(stack, org, "dispute.transfer_reversed", won["id"])
    assert reversed_entry["targets"]["stripe_transfer"] == transfer_id
    assert reversed_entry["targets"]["stripe_transfer_reversal"] == transfer.reversals.data[0].id
    assert (reversed_entry["after"]["amount"], reversed_entry["after"]["currency"]) == (5_400, "eur")
    returned_entry = await _transfer_entry(stack, org, "dispute.transfer_returned", won["id"])
    assert returned_entry["targets"]["stripe_return_transfer"] == given_back.data[0].id
    assert returned_entry["after"]["amount"] == 5_400 and returned_entry["after"]["status"] == "won"
    for entry in (reversed_entry, returned_entry):
        assert entry["actor_role"] == "service" and entry["actor_id"].startswith("service:")
        assert entry["organization_id"] == org.id and entry["source"] == "payments"


async def _transfer_entry(stack: Stack, org: OrgContext, action: str, dispute_id: str) -> dict[str, Any]:
    """The one audit entry of a dispute's transfer move, once Payments' outbox has been forwarded."""

    async def found() -> list[dict[str, Any]]:
        answer = await stack.http.get("/v1/audit", headers=org.admin_headers, params={"action": action})
        return [e for e in answer.json()["data"] if e["targets"].get("dispute_id") == dispute_id]

    [entry] = await eventually(found, f"the dispute's {action} audit entry")
    result: dict[str, Any] = entry
    return result


async def test_a_lost_destination_dispute_keeps_the_reversal_and_counts_as_lost(stack: Stack) -> None:
    org = await onboarded_organization(stack, charge_model="destination")
    payment = await disputed_payment(stack, org, "destination", 3_000)
    await deliver_shuffled(stack, payment, None, seed=9)
    dispute = await listed_dispute(stack, org.admin_headers, payment["id"])
    assert dispute["transfer_reversed"] == 3_000
    await submit_evidence(stack, org, dispute, "losing_evidence")
    await stripe_dispute(stack, payment, None, "lost")
    for seed in (10, 11):
        await deliver_shuffled(stack, payment, None, seed)
    lost = await listed_dispute(stack, org.admin_headers, payment["id"])
    assert (lost["status"], lost["reinstated"], lost["transfer_returned"]) == ("lost", 0, 0)
    figures = await totals(stack, org)
    assert (figures["disputed_count"], figures["disputed"], figures["disputes_lost"]) == (1, 3_000, 3_000)


async def test_platform_admin_lists_every_organisation_or_one_and_evidence_is_checked(stack: Stack) -> None:
    org = await onboarded_organization(stack)
    payment = await disputed_payment(stack, org, "direct", 2_000)
    await deliver_shuffled(stack, payment, org.stripe_account_id, seed=12)
    admin = await stack.admin_headers()
    everything = await listed_dispute(stack, admin, payment["id"])
    answer = await stack.http.get(f"/v1/disputes?organization_id={org.id}", headers=admin)
    assert [d["id"] for d in answer.json()["data"]] == [everything["id"]]
    another = await disputed_payment(stack, org, "direct", 2_100)
    await deliver_shuffled(stack, another, org.stripe_account_id, seed=15)
    pages = f"/v1/disputes?organization_id={org.id}&limit=1"
    first = (await stack.http.get(pages, headers=admin)).json()
    second = (await stack.http.get(f"{pages}&cursor={first['next_cursor']}", headers=admin)).json()
    assert sorted(d["amount"] for d in first["data"] + second["data"]) == [2_000, 2_100]
    assert second["next_cursor"] is None
    url = f"/v1/disputes/{everything['id']}/evidence"
    unknown = await stack.http.post(url, headers=admin, json={"evidence": {"favourite_colour": "blue"}})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "evidence.favourite_colour"
    not_text = await stack.http.post(url, headers=admin, json={"evidence": {"receipt": 3}})
    assert not_text.status_code == 400
    staged = await stack.http.post(
        url, headers=admin, json={"evidence": {"product_description": "A calendar"}, "submit": False}
    )
    assert staged.status_code == 200 and staged.json()["status"] == "needs_response"
    dispute = (
        await stack.extras["stripe_sandbox"]
        .client()
        .v1.disputes.retrieve_async(everything["stripe_dispute_id"], options=stripe_options(org.stripe_account_id))
    )
    assert dispute.evidence.product_description == "A calendar"
    missing = await stack.http.post(
        "/v1/disputes/00000000-0000-0000-0000-000000000000/evidence", headers=admin, json={"evidence": {}}
    )
    assert missing.status_code == 404


async def test_a_disputed_payment_cannot_be_refunded(stack: Stack) -> None:
    """Stripe refuses to refund a disputed charge (400 before the dispute's events came); once it is
    recorded the platform answers 409 itself, without asking Stripe."""
    org = await onboarded_organization(stack)
    payment = await disputed_payment(stack, org, "direct", 1_500)
    url = f"/v1/payments/{payment['id']}/refunds"
    early = await stack.http.post(url, headers={**org.admin_headers, **key()}, json={})
    assert early.status_code == 400 and early.json()["code"] == "stripe_charge_disputed", early.text
    await deliver_shuffled(stack, payment, org.stripe_account_id, seed=13)
    known = await stack.http.post(url, headers={**org.admin_headers, **key()}, json={})
    assert known.status_code == 409 and known.json()["code"] == "payment_disputed", known.text


async def test_a_card_present_sale_tapped_with_the_dispute_card_is_disputed_and_recorded(stack: Stack) -> None:
    """Tap to Pay / a reader: the dispute test card presented on a simulated reader (4000 0000 0000 0259)."""
    org = await onboarded_organization(stack)
    payment = await create_payment(stack, org.agent_headers, amount=2_500)
    assert payment["method"] == "card_present"
    client = stack.extras["stripe_sandbox"].client(stripe_account=org.stripe_account_id)
    location = await client.v1.terminal.locations.create_async(
        params={"display_name": "Caserne", "address": {"line1": "1 rue", "city": "Paris", "country": "FR"}}
    )
    reader = await client.v1.terminal.readers.create_async(
        params={"registration_code": "simulated-wpe", "location": location.id}
    )
    await client.v1.terminal.readers.process_payment_intent_async(
        reader.id, params={"payment_intent": payment["stripe_payment_intent_id"]}
    )
    await client.v1.test_helpers.terminal.readers.present_payment_method_async(
        reader.id, params={"card_present": {"number": "4000000000000259"}}
    )
    await settle(stack, org, payment, org.stripe_account_id)
    await stripe_dispute(stack, payment, org.stripe_account_id, "needs_response")
    await deliver_shuffled(stack, payment, org.stripe_account_id, seed=14)
    dispute = await listed_dispute(stack, org.admin_headers, payment["id"])
    assert (dispute["amount"], dispute["status"], dispute["withdrawn"]) == (2_500, "needs_response", 2_500)
