"""Disputes as Stripe's test mode has them.

A charge paid with `pm_card_createDispute` (card 4000 0000 0000 0259, also presented on a
simulated reader) is disputed `dispute_delay_seconds` after it is captured: the dispute opens
`needs_response` (reason `fraudulent`), and its amount plus the dispute fee are withdrawn from the
balance of the account that owns the charge (the connected account for direct charges, the
platform for destination charges) by one `adjustment` balance transaction:
`charge.dispute.created`, then `charge.dispute.funds_withdrawn`.

Evidence (`POST /v1/disputes/{id}` with `evidence[...]`) is staged with `submit=false` and
submitted otherwise (`under_review`, `charge.dispute.updated`). As Stripe documents for test mode,
`evidence[uncategorized_text]=winning_evidence` wins the dispute and `losing_evidence` loses it,
`dispute_outcome_delay_seconds` after the submission: `charge.dispute.closed`, and when won
`charge.dispute.funds_reinstated` with the amount credited back (the fee is not returned).
`POST /v1/disputes/{id}/close` accepts the dispute: lost, `charge.dispute.closed`.
"""

from __future__ import annotations

import time
from typing import Any

from ..context import Ctx
from ..ids import new_id
from ..state import SandboxState
from ..store import StripeObject, created_filter, paginate
from ..validation import load_spec
from ..wire import StripeError, apply_metadata, get_bool, get_dict

DISPUTE_LAST4 = "0259"  # Stripe's test card 4000 0000 0000 0259
WINNING = "winning_evidence"
LOSING = "losing_evidence"
_DUE_DAYS = 7
_OPEN = ("needs_response", "warning_needs_response")
# The evidence fields Stripe takes, as its description (openapi/spec3.json) has them.
_EVIDENCE_FIELDS = tuple(load_spec()["components"]["schemas"]["dispute_evidence"]["properties"])


def disputes_on_capture(charge: StripeObject) -> bool:
    details = charge["payment_method_details"]
    return (details.get(details["type"]) or {}).get("last4") == DISPUTE_LAST4


def schedule_dispute(ctx: Ctx, charge: StripeObject) -> None:
    """Called once a charge is captured: the test card's dispute follows shortly."""
    if not disputes_on_capture(charge):
        return
    state, account, charge_id = ctx.state, ctx.account, charge["id"]
    state.later(state.config.dispute_delay_seconds, lambda: open_dispute(state, account, charge_id))


def _money_txn(state: SandboxState, account: str, dispute: StripeObject, amount: int, fee: int) -> StripeObject:
    fee_details = []
    if fee:
        fee_details.append(
            {
                "amount": fee,
                "application": None,
                "currency": dispute["currency"],
                "description": "Dispute fee",
                "type": "stripe_fee",
            }
        )
    return state.ledger.record(
        account,
        amount,
        dispute["currency"],
        "adjustment",
        dispute["id"],
        fee_details=fee_details,
        description=f"Chargeback withdrawal for {dispute['charge']}"
        if amount < 0
        else f"Chargeback reversal for {dispute['charge']}",
        reporting_category="dispute" if amount < 0 else "dispute_reversal",
    )


def open_dispute(state: SandboxState, account: str, charge_id: str) -> StripeObject | None:
    charge = state.store.objects.get(charge_id)
    if charge is None or charge["disputed"]:
        return None
    now = int(time.time())
    amount = charge["amount_captured"]
    dispute: StripeObject = {
        "id": new_id("dp"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_id,
        "created": now,
        "currency": charge["currency"],
        "evidence": {name: None for name in _EVIDENCE_FIELDS},
        "evidence_details": {
            "due_by": now + _DUE_DAYS * 86_400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": "fraudulent",
        "status": "needs_response",
    }
    state.store.add(account, dispute)
    charge["disputed"] = True
    state.emit(account, "charge.dispute.created", dispute)
    txn = _money_txn(state, account, dispute, -amount, state.config.dispute_fee)
    dispute["balance_transactions"] = [txn]
    state.emit(account, "charge.dispute.funds_withdrawn", dispute)
    return dispute


def _close(state: SandboxState, account: str, dispute_id: str, outcome: str) -> None:
    dispute = state.store.objects.get(dispute_id)
    if dispute is None or dispute["status"] in ("won", "lost"):
        return
    previous = {"status": dispute["status"]}
    dispute["status"] = outcome
    state.emit(account, "charge.dispute.closed", dispute, previous)
    if outcome == "won":
        txn = _money_txn(state, account, dispute, dispute["amount"], 0)
        dispute["balance_transactions"] = [*dispute["balance_transactions"], txn]
        state.emit(account, "charge.dispute.funds_reinstated", dispute)


def retrieve(ctx: Ctx, dispute_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, dispute_id, "dispute")


def _not_open(dispute: StripeObject, action: str) -> StripeError:
    return StripeError(
        400,
        f"This dispute is already closed and cannot be {action} (status: {dispute['status']}).",
        code="charge_dispute_closed" if dispute["status"] in ("won", "lost") else None,
    )


def update(ctx: Ctx, dispute_id: str) -> StripeObject:
    dispute = retrieve(ctx, dispute_id)
    params = ctx.params
    evidence = get_dict(params, "evidence") or {}
    submit = get_bool(params, "submit", default=True)
    if (evidence or "submit" in params) and dispute["status"] not in _OPEN:
        raise _not_open(dispute, "updated")
    previous: dict[str, Any] = {}
    if evidence:
        previous["evidence"] = dict(dispute["evidence"])
        dispute["evidence"].update({k: (v or None) for k, v in evidence.items()})
        dispute["evidence_details"]["has_evidence"] = True
    if "metadata" in params:
        previous["metadata"] = dispute["metadata"]
        apply_metadata(dispute, params)
    if submit and (evidence or "submit" in params):
        previous["status"] = dispute["status"]
        previous["evidence_details"] = dict(dispute["evidence_details"])
        dispute["status"] = "under_review"
        dispute["evidence_details"]["submission_count"] += 1
        text = dispute["evidence"].get("uncategorized_text")
        outcome = {WINNING: "won", LOSING: "lost"}.get(str(text))
        if outcome is not None:
            state, account = ctx.state, ctx.account
            state.later(state.config.dispute_outcome_delay_seconds, lambda: _close(state, account, dispute_id, outcome))
    ctx.emit("charge.dispute.updated", dispute, previous)
    return dispute


def close(ctx: Ctx, dispute_id: str) -> StripeObject:
    dispute = retrieve(ctx, dispute_id)
    if dispute["status"] not in _OPEN:
        raise _not_open(dispute, "closed")
    _close(ctx.state, ctx.account, dispute_id, "lost")
    return dispute


def list_disputes(ctx: Ctx) -> StripeObject:
    charge = ctx.params.get("charge")
    intent = ctx.params.get("payment_intent")
    created = created_filter(ctx.params)

    def keep(dispute: StripeObject) -> bool:
        return (
            (not charge or dispute["charge"] == charge)
            and (not intent or dispute["payment_intent"] == intent)
            and (created is None or created(dispute))
        )

    return paginate(ctx.state.store.newest_first(ctx.account, "dispute"), ctx.params, "/v1/disputes", keep)


def _dispute_of_charge(ctx: Ctx, charge_id: str) -> StripeObject:
    ctx.state.store.get(ctx.account, charge_id, "charge")
    for dispute in ctx.state.store.newest_first(ctx.account, "dispute"):
        if dispute["charge"] == charge_id:
            return dispute
    raise StripeError(404, f"No dispute for charge: '{charge_id}'", param="charge", code="resource_missing")


def retrieve_for_charge(ctx: Ctx, charge_id: str) -> StripeObject:
    return _dispute_of_charge(ctx, charge_id)


def update_for_charge(ctx: Ctx, charge_id: str) -> StripeObject:
    return update(ctx, _dispute_of_charge(ctx, charge_id)["id"])


def close_for_charge(ctx: Ctx, charge_id: str) -> StripeObject:
    return close(ctx, _dispute_of_charge(ctx, charge_id)["id"])


ROUTES = [
    ("GET", "/v1/disputes", list_disputes),
    ("GET", "/v1/disputes/{}", retrieve),
    ("POST", "/v1/disputes/{}", update),
    ("POST", "/v1/disputes/{}/close", close),
    ("GET", "/v1/charges/{}/dispute", retrieve_for_charge),
    ("POST", "/v1/charges/{}/dispute", update_for_charge),
    ("POST", "/v1/charges/{}/dispute/close", close_for_charge),
]
