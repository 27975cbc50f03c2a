"""Reconciliation through the gateway: unmatched items, manual match and unmatch, payouts from the API, allocation rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.banking.conftest import deliver, eventually, fail_payout, pay_out, sell


async def _state(stack: Stack, headers: dict[str, str]) -> dict[str, Any]:
    answer = await stack.http.get("/v1/banking/reconciliation", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _run(stack: Stack, headers: dict[str, str]) -> dict[str, Any]:
    answer = await stack.http.post("/v1/banking/reconciliation/run", headers=headers, json={})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _credit(stack: Stack, headers: dict[str, str], reference: str) -> dict[str, Any] | None:
    answer = await stack.http.get("/v1/banking/transactions", params={"limit": "100"}, headers=headers)
    return next((t for t in answer.json()["data"] if t["reference"] == reference), None)


async def test_unmatched_items_manual_match_and_unmatch(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    qonto = stack.extras["qonto_sandbox"]
    org = await onboarded_organization(stack)

    # A payout whose bank credit is 50 cents off (tolerance 0), and a Stripe-looking credit nobody expects.
    await sell(stack, org, [4000])
    off = await pay_out(stack, org, statement_descriptor="CLUB OFF")
    await eventually(lambda: _credit(stack, admin, "CLUB OFF"), "the sandbox's credit")
    stray = await qonto.inject(amount_cents=off["amount"] + 50, label="STRIPE PAYMENTS UK LTD", reference="MISC")
    lone = await qonto.inject(amount_cents=123_456, label="STRIPE", reference="unknown")
    await qonto.update(
        (await _credit(stack, admin, "CLUB OFF") or {})["id"], status="reversed"
    )  # the exact credit bounced back
    assert (await stack.http.post("/v1/banking/sync", headers=admin)).status_code == 200

    run = await _run(stack, admin)
    assert run["created"] == 0
    state = await _state(stack, admin)
    unmatched_payouts = {p["stripe_payout_id"]: p for p in state["unmatched_payouts"]}
    unmatched_credits = {t["transaction_id"]: t for t in state["unmatched_credits"]}
    assert off["id"] in unmatched_payouts
    assert {stray["transaction_id"], lone["transaction_id"]} <= set(unmatched_credits)
    assert all(t["status"] == "completed" for t in state["unmatched_credits"])

    # A person decides: this payout is that credit.
    payout_id = unmatched_payouts[off["id"]]["id"]
    credit_id = unmatched_credits[stray["transaction_id"]]["id"]
    manual = await stack.http.post(
        "/v1/banking/reconciliation/matches",
        headers=admin,
        json={"payout_ids": [payout_id], "bank_transaction_id": credit_id, "note": "bank fee on arrival"},
    )
    assert manual.status_code == 201, manual.text
    match = manual.json()
    assert (match["rule"], match["manual"], match["difference"]) == ("manual", True, 50)
    assert "bank fee on arrival" in match["explanation"]
    twice = await stack.http.post(
        "/v1/banking/reconciliation/matches",
        headers=admin,
        json={"payout_ids": [payout_id], "bank_transaction_id": unmatched_credits[lone["transaction_id"]]["id"]},
    )
    assert twice.status_code == 409 and twice.json()["code"] == "already_matched"
    missing = await stack.http.post(
        "/v1/banking/reconciliation/matches",
        headers=admin,
        json={"payout_ids": ["00000000-0000-0000-0000-000000000000"], "bank_transaction_id": credit_id},
    )
    assert missing.status_code == 404

    rerun = await _run(stack, admin)  # the rules never undo a manual match
    assert rerun["created"] == 0 and rerun["removed"] == 0
    assert any(m["id"] == match["id"] for m in (await _state(stack, admin))["matches"])
    listed = await stack.http.get("/v1/banking/transactions", params={"reconciled": "true"}, headers=admin)
    assert credit_id in {t["id"] for t in listed.json()["data"]}

    # An exact payout the rules match; a person undoes it: the rules then leave both alone.
    await sell(stack, org, [1500])
    exact = await pay_out(stack, org, statement_descriptor="CLUB EXACT")
    await eventually(lambda: _credit(stack, admin, "CLUB EXACT"), "the sandbox's credit")
    assert (await stack.http.post("/v1/banking/sync", headers=admin)).status_code == 200
    assert (await _run(stack, admin))["created"] == 1
    auto = next(m for m in (await _state(stack, admin))["matches"] if m["rule"] == "reference")
    assert "CLUB EXACT" in auto["explanation"]
    assert (
        await stack.http.delete(f"/v1/banking/reconciliation/matches/{auto['id']}", headers=admin)
    ).status_code == 204
    assert (
        await stack.http.delete(f"/v1/banking/reconciliation/matches/{auto['id']}", headers=admin)
    ).status_code == 404
    assert (await _run(stack, admin))["created"] == 0
    state = await _state(stack, admin)
    assert exact["id"] in {p["stripe_payout_id"] for p in state["unmatched_payouts"]}
    assert all(m["id"] != auto["id"] for m in state["matches"])


async def test_payouts_pulled_from_stripe(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    org = await onboarded_organization(stack)
    await sell(stack, org, [2000])
    assert org.stripe_account_id
    client = stack.extras["stripe_sandbox"].client(stripe_account=org.stripe_account_id)
    available = (await client.v1.balance.retrieve_async()).available[0].amount
    payout = await client.v1.payouts.create_async(params={"amount": available, "currency": "eur"})
    await stack.extras["stripe_sandbox"].wait_for_deliveries()
    first = await stack.http.post("/v1/banking/payouts/sync", headers=admin)
    assert first.status_code == 200, first.text
    assert first.json()["inserted"] >= 1
    second = await stack.http.post("/v1/banking/payouts/sync", headers=admin)
    assert second.json()["inserted"] == 0 and second.json()["updated"] == 0
    rows = await stack.deps["banking"].pool.fetch(
        """SELECT b.type, b.amount, b.fee FROM payout_balance_transactions b JOIN payouts p ON p.id = b.payout_id
            WHERE p.stripe_payout_id = $1""",
        payout.id,
    )
    assert {r["type"] for r in rows} >= {"payout"} and any(r["type"] in ("charge", "payment") for r in rows)
    stored = [
        p for p in (await stack.http.get("/v1/banking/payouts", params={"limit": "100"}, headers=admin)).json()["data"]
    ]
    assert any(p["stripe_payout_id"] == payout.id and p["organization_id"] == org.id for p in stored)


async def test_an_account_gone_from_the_platform_does_not_stop_the_payouts_sync(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    gone, kept = await onboarded_organization(stack), await onboarded_organization(stack)
    assert gone.stripe_account_id and kept.stripe_account_id
    await sell(stack, kept, [2500])
    client = stack.extras["stripe_sandbox"].client(stripe_account=kept.stripe_account_id)
    available = (await client.v1.balance.retrieve_async()).available[0].amount
    payout = await client.v1.payouts.create_async(params={"amount": available, "currency": "eur"})
    # The first organisation's account is deleted at Stripe: reading it answers 403 account_invalid.
    await stack.extras["stripe_sandbox"].client().v1.accounts.delete_async(gone.stripe_account_id)

    synced = await stack.http.post("/v1/banking/payouts/sync", headers=admin)
    assert synced.status_code == 200, synced.text
    assert synced.json()["inaccessible_accounts"] >= 1
    stored = (await stack.http.get("/v1/banking/payouts", params={"limit": "100"}, headers=admin)).json()["data"]
    assert payout.id in {p["stripe_payout_id"] for p in stored}


async def test_allocation_rules_are_validated(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    entities = [{"entity": "holding", "tax_rate_bps": 2500}, {"entity": "asso", "tax_rate_bps": 0}]
    cases = [
        (
            {"entities": entities, "rules": [{"entity": "holding", "share_bps": 6000}]},
            "invalid_allocation_rules",
            "rules",
        ),
        (
            {"entities": entities, "rules": [{"entity": "nope", "share_bps": 10_000}]},
            "invalid_allocation_rules",
            "rules[0].entity",
        ),
        (
            {
                "entities": entities,
                "rules": [
                    {"organization_id": "org-1", "entity": "holding", "share_bps": 5000},
                    {"organization_id": "org-1", "entity": "holding", "share_bps": 5000},
                ],
            },
            "invalid_allocation_rules",
            "rules[1]",
        ),
        (
            {"entities": entities, "rules": [{"entity": "holding", "share_bps": "all"}]},
            "validation_error",
            "rules[0].share_bps",
        ),
        (
            {"entities": [{"entity": "holding", "tax_rate_bps": 20_000}], "rules": []},
            "validation_error",
            "entities[0].tax_rate_bps",
        ),
        ({"rules": []}, "validation_error", "entities"),
    ]
    for body, code, field in cases:
        answer = await stack.http.put("/v1/banking/allocation-rules", headers=admin, json=body)
        assert answer.status_code == 400, (body, answer.text)
        problem = answer.json()
        assert problem["code"] == code and field in [e["field"] for e in problem["errors"]], problem
    good = {
        "entities": entities,
        "rules": [
            {"entity": "holding", "share_bps": 10_000},
            {"organization_id": "org-1", "entity": "holding", "share_bps": 2500},
            {"organization_id": "org-1", "entity": "asso", "share_bps": 7500},
        ],
    }
    answer = await stack.http.put("/v1/banking/allocation-rules", headers=admin, json=good)
    assert answer.status_code == 200, answer.text
    stored = (await stack.http.get("/v1/banking/allocation-rules", headers=admin)).json()
    assert stored["entities"] == entities and len(stored["rules"]) == 3
    org = await onboarded_organization(stack)
    forbidden = await stack.http.put("/v1/banking/allocation-rules", headers=org.admin_headers, json=good)
    assert forbidden.status_code == 403


async def test_every_bank_account_is_pulled_with_its_legal_entity(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    qonto = stack.extras["qonto_sandbox"]
    main = await qonto.inject(amount_cents=1111, label="RENT REFUND", reference="main-account")
    savings = await qonto.inject(
        amount_cents=2222,
        label="INTEREST",
        reference="savings-account",
        bank_account_slug="collect-sandbox-bank-account-2",
    )
    assert (await stack.http.post("/v1/banking/sync", headers=admin)).status_code == 200
    by_reference = {
        t["reference"]: t
        for t in (await stack.http.get("/v1/banking/transactions", params={"limit": "100"}, headers=admin)).json()[
            "data"
        ]
    }
    assert by_reference["main-account"]["transaction_id"] == main["transaction_id"]
    assert by_reference["main-account"]["iban"] == "FR7616958000010000000000140"
    assert by_reference["main-account"]["legal_entity"] == "holding"
    assert by_reference["savings-account"]["transaction_id"] == savings["transaction_id"]
    assert by_reference["savings-account"]["iban"] == "FR7616958000010000000000237"
    assert by_reference["savings-account"]["legal_entity"] is None


async def test_a_payout_failing_after_its_match_loses_the_automatic_match(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    org = await onboarded_organization(stack)
    await sell(stack, org, [3000])
    payout = await pay_out(stack, org, statement_descriptor="CLUB BOUNCE")
    credit = await eventually(lambda: _credit(stack, admin, "CLUB BOUNCE"), "the sandbox's credit")
    assert (await _run(stack, admin))["created"] >= 1
    assert credit["id"] in {m["bank_transaction_id"] for m in (await _state(stack, admin))["matches"]}

    await fail_payout(stack, org, payout["id"])

    run = await _run(stack, admin)
    assert run["removed"] == 1 and run["created"] == 0
    state = await _state(stack, admin)
    assert credit["id"] in {t["id"] for t in state["unmatched_credits"]}
    assert payout["id"] not in {p["stripe_payout_id"] for p in state["unmatched_payouts"]}


async def test_a_bounded_run_finds_a_credit_settling_days_after_the_arrival_date(bank_stack: Stack) -> None:
    """The window is [from - days_before, to + days_after] (1 and 3 days by default)."""
    stack = bank_stack
    admin = await stack.admin_headers()
    qonto = stack.extras["qonto_sandbox"]
    org = await onboarded_organization(stack)
    await sell(stack, org, [2300])
    late = await pay_out(stack, org, statement_descriptor="CLUB LATE")
    credit = await eventually(lambda: _credit(stack, admin, "CLUB LATE"), "the sandbox's credit")
    arrival = datetime.fromtimestamp(late["arrival_date"], UTC)
    await qonto.update(credit["id"], settled_at=(arrival + timedelta(days=3)).isoformat())
    assert (await stack.http.post("/v1/banking/sync", headers=admin)).status_code == 200

    day = arrival.date().isoformat()
    run = await stack.http.post("/v1/banking/reconciliation/run", headers=admin, json={"from": day, "to": day})
    assert run.status_code == 200, run.text
    state = await _state(stack, admin)
    assert late["id"] not in {p["stripe_payout_id"] for p in state["unmatched_payouts"]}
    assert any(m["bank_transaction_id"] == credit["id"] for m in state["matches"])


async def test_a_credit_without_a_date_is_left_to_people_not_a_server_error(bank_stack: Stack) -> None:
    # A Qonto webhook may carry a completed credit with neither `settled_at` nor `emitted_at`: the
    # rules cannot place it in their window (a run over every date used to crash on it, a 500), so
    # they leave it and it is listed for a person to match.
    stack = bank_stack
    admin = await stack.admin_headers()
    transaction = {
        "id": str(uuid.uuid4()),
        "amount_cents": 4321,
        "side": "credit",
        "status": "completed",
        "label": "STRIPE",
        "reference": f"UNDATED {uuid.uuid4().hex[:8]}",
    }
    event_id = str(uuid.uuid4())
    event = {"id": event_id, "type": "transaction.created", "data": {"transaction": transaction}}
    assert await deliver(stack, "banking", [event], source="qonto") == ["pending"]  # applied by the inbox worker

    async def applied() -> bool:
        status = await stack.deps["banking"].pool.fetchval(
            "SELECT status FROM inbox_events WHERE source = 'qonto' AND event_id = $1", event_id
        )
        return status == "applied"

    await eventually(applied, "the Qonto event applied")
    assert (await _run(stack, admin))["created"] == 0  # every date: the undated credit is read too
    state = await _state(stack, admin)
    assert transaction["id"] in {t["transaction_id"] for t in state["unmatched_credits"]}
