"""Random sequences of sales, captures, refunds, offline batches, disputes won and lost, and
shuffled, duplicated Stripe events against the real services; after each step the money invariants hold, and the organisation's
FEC balances and books what its stats say."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.fec import account_totals, checked_fec
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import confirm, create_payment, deliver, key

SLOTS = 6  # operations name a sale by its index modulo the sales made so far
steps = st.lists(
    st.one_of(
        st.tuples(st.just("sale"), st.integers(100, 5000), st.booleans()),
        st.tuples(st.just("capture"), st.integers(0, SLOTS), st.integers(1, 100)),
        st.tuples(st.just("refund"), st.integers(0, SLOTS), st.integers(0, 100)),
        st.tuples(st.just("dashboard_refund"), st.integers(0, SLOTS), st.integers(1, 100)),
        st.tuples(
            st.just("offline"),
            st.lists(st.tuples(st.integers(1, 4), st.integers(1, 5000), st.integers(0, 240)), min_size=1, max_size=4),
        ),
        st.tuples(st.just("events"), st.randoms(use_true_random=False)),
        st.tuples(st.just("disputed_sale"), st.integers(100, 5000)),
        st.tuples(st.just("evidence"), st.sampled_from(["winning_evidence", "losing_evidence"])),
    ),
    min_size=2,
    max_size=8,
)


async def _check(stack: Stack, org: OrgContext) -> None:
    listed = await stack.http.get("/v1/payments?limit=100", headers=org.admin_headers)
    payments: list[dict[str, Any]] = listed.json()["data"]
    expected: dict[str, list[int]] = {}
    for p in payments:
        assert 0 <= p["amount_refunded"] <= p["amount_captured"], p
        assert sum(r["amount"] for r in p["refunds"] if r["status"] == "succeeded") == p["amount_refunded"], p
        if p["status"] == "succeeded":
            sums = expected.setdefault(p["currency"], [0, 0, 0, 0])
            sums[0] += 1
            sums[1] += p["amount_captured"]
            sums[2] += p["amount_refunded"]
            sums[3] += p["application_fee_amount"] - p["application_fee_refunded"]
    today = datetime.now(UTC).date()
    days = {"from": str(today - timedelta(days=20)), "to": str(today + timedelta(days=1))}
    stats = await stack.http.get(f"/v1/organizations/{org.id}/stats", params=days, headers=org.admin_headers)
    seen = {
        t["currency"]: [t["count"], t["gross"], t["refunded"], t["fees"]] for t in stats.json()["totals_by_currency"]
    }
    assert seen == expected, (seen, expected)
    disputes = {t["currency"]: (t["disputed"], t["disputes_lost"]) for t in stats.json()["totals_by_currency"]}
    # The organisation's books on the same days: balanced, numbered without gaps, and saying the same.
    fec = await stack.http.get(f"/v1/organizations/{org.id}/exports/fec", params=days, headers=org.admin_headers)
    assert fec.status_code == 200, fec.text
    rows, _ = checked_fec(fec.text)
    for currency, (_, gross, refunded, fees) in expected.items():
        assert account_totals(rows, "706000", currency.upper())[1] == gross
        assert account_totals(rows, "709000", currency.upper())[0] == refunded
        fee_debits, fee_credits = account_totals(rows, "622000", currency.upper())
        assert fee_debits - fee_credits == fees
        # Disputes (direct charges: all the organisation's): taken into disputed receivables, lost to losses.
        disputed, lost = disputes.get(currency, (0, 0))
        assert account_totals(rows, "416000", currency.upper())[0] == disputed
        assert account_totals(rows, "654000", currency.upper())[0] == lost
    intents = (
        await stack.extras["stripe_sandbox"]
        .client()
        .v1.payment_intents.list_async(params={"limit": 100}, options={"stripe_account": org.stripe_account_id})
    )
    recorded = [p["stripe_payment_intent_id"] for p in payments if p["stripe_payment_intent_id"]]
    assert sorted(recorded) == sorted(i.id for i in intents.data)  # each intent is exactly one payment


async def _step(stack: Stack, org: OrgContext, sales: list[dict[str, Any]], step: tuple[Any, ...]) -> None:
    kind = step[0]
    account = org.stripe_account_id
    sandbox = stack.extras["stripe_sandbox"]
    if kind == "sale":
        payment = await create_payment(
            stack, org.agent_headers, amount=step[1], capture_method="manual" if step[2] else "automatic"
        )
        await confirm(stack, payment, account)
        sales.append(payment)
    elif kind == "disputed_sale":
        payment = await create_payment(stack, org.agent_headers, amount=step[1], method="card")
        await confirm(stack, payment, account, pm="pm_card_createDispute")
    elif kind == "evidence":
        listed = await stack.http.get("/v1/disputes?limit=100", headers=org.admin_headers)
        open_ = [d for d in listed.json()["data"] if d["status"] == "needs_response"]
        if open_:
            answer = await stack.http.post(
                f"/v1/disputes/{open_[0]['id']}/evidence",
                headers=org.admin_headers,
                json={"evidence": {"uncategorized_text": step[1]}},
            )
            assert answer.status_code == 200, answer.text
    elif kind == "offline":
        now = datetime.now(UTC)
        items = [
            {
                "local_id": str(local),
                "amount": amount,
                "method": "cash",
                "created_at": (now - timedelta(hours=h)).isoformat(),
            }
            for local, amount, h in step[1]
        ]
        answer = await stack.http.post(
            "/v1/payments/offline-batch", headers=org.agent_headers, json={"transactions": items}
        )
        assert answer.status_code == 200, answer.text
    elif kind == "events":
        listed = await sandbox.client().v1.events.list_async(params={"limit": 100}, options={"stripe_account": account})
        events = [e.to_dict() for e in listed.data]
        shuffled = events + step[1].sample(events, len(events) // 2)
        step[1].shuffle(shuffled)
        await deliver(stack, shuffled)
    elif sales:
        payment = sales[step[1] % len(sales)]
        url = f"/v1/payments/{payment['id']}"
        if kind == "capture":
            amount = max(1, payment["amount"] * step[2] // 100)
            answer = await stack.http.post(
                f"{url}/capture", headers=org.agent_headers, json={"amount_to_capture": amount}
            )
            assert answer.status_code in (200, 400, 409), answer.text
        elif kind == "refund":
            current = (await stack.http.get(url, headers=org.admin_headers)).json()
            amount = current["amount_captured"] * step[2] // 100
            body = {"amount": amount} if amount else {}  # no amount: what is left
            answer = await stack.http.post(f"{url}/refunds", headers={**org.admin_headers, **key()}, json=body)
            assert answer.status_code in (201, 409), answer.text
        else:
            # Not captured, or more than is left: Stripe refuses, nothing happened.
            with contextlib.suppress(stripe.InvalidRequestError):
                await sandbox.client(stripe_account=account).v1.refunds.create_async(
                    params={"payment_intent": payment["stripe_payment_intent_id"], "amount": max(1, step[2] * 10)}
                )


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=steps)
async def test_money_invariants_hold_after_every_step(stack: Stack, steps: list[tuple[Any, ...]]) -> None:
    org = await onboarded_organization(stack, fee_percent_bps=250)
    admin = await stack.admin_headers()
    named = await stack.http.patch(f"/v1/organizations/{org.id}", headers=admin, json={"siren": "732829320"})
    assert named.status_code == 200, named.text
    sales: list[dict[str, Any]] = []
    for step in steps:
        await _step(stack, org, sales, step)
        await _check(stack, org)
    await _step(stack, org, sales, ("events", random.Random(len(steps))))
    await _check(stack, org)
