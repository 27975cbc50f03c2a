"""Stripe payouts: from `payout.*` events and from the API, with the balance transactions each one carries."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

from collect.accounts.v1 import accounts_pb2 as accounts_pb

from runtime import audit
from runtime.clients import call
from runtime.db import Connection
from runtime.defaults import DEFAULT_CURRENCY
from runtime.errors import Conflict, FieldError, InvalidArgument
from runtime.inbox import APPLIED, IGNORED, InboundEvent
from runtime.stripe_api import stripe_errors
from services.banking import auditing, repository
from services.banking.context import Banking
from services.banking.repository import PayoutFields
from services.banking.sync import SyncCounts

log = logging.getLogger("services.banking.payouts")


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def payout_fields(obj: dict[str, Any], stripe_account_id: str) -> PayoutFields:
    trace = obj.get("trace_id")
    trace_value = trace.get("value") if isinstance(trace, dict) else None
    return PayoutFields(
        stripe_payout_id=str(obj["id"]),
        stripe_account_id=stripe_account_id,
        amount=int(obj["amount"]),
        currency=str(obj.get("currency") or "eur"),
        status=str(obj.get("status") or "pending"),
        arrival_date=_time(obj.get("arrival_date")),
        stripe_created_at=_time(obj.get("created")),
        statement_descriptor=obj.get("statement_descriptor") or None,
        trace_id=trace_value or None,
        failure_code=obj.get("failure_code") or None,
        failure_message=obj.get("failure_message") or None,
    )


def _options(stripe_account_id: str) -> dict[str, Any]:
    return {"stripe_account": stripe_account_id} if stripe_account_id else {}


def stripe_fee(txn: Any) -> int:
    """Stripe's own fees on a balance transaction: on a direct charge, `fee` also holds the platform's
    application fee (a `fee_details` line of type application_fee), which is booked from Payments."""
    details = getattr(txn, "fee_details", None) or []
    if not details:
        return int(txn.fee or 0)
    return sum(int(d.amount) for d in details if d.type != "application_fee")


async def fetch_balance_transactions(
    banking: Banking, stripe_payout_id: str, stripe_account_id: str
) -> list[dict[str, Any]]:
    """Every balance transaction the payout contains (charges, refunds, fees, the payout itself)."""
    lines: list[dict[str, Any]] = []
    params: dict[str, Any] = {"payout": stripe_payout_id, "limit": 100}
    while True:
        with stripe_errors():
            page = await banking.stripe.v1.balance_transactions.list_async(
                params=params,  # type: ignore[arg-type]
                options=_options(stripe_account_id),  # type: ignore[arg-type]
            )
        for txn in page.data:
            lines.append(
                {
                    "id": txn.id,
                    "type": txn.type,
                    "source": txn.source if isinstance(txn.source, str) else getattr(txn.source, "id", None),
                    "amount": txn.amount,
                    "fee": stripe_fee(txn),
                    "net": txn.net,
                    "currency": txn.currency,
                    "created": _time(txn.created) or datetime.now(UTC),
                }
            )
        if not page.has_more or not page.data:
            return lines
        params["starting_after"] = page.data[-1].id


async def _store(banking: Banking, conn: Connection, fields: PayoutFields, event_created_at: datetime | None) -> str:
    organization_id = await banking.organization_of(fields.stripe_account_id)
    payout_id, outcome = await repository.upsert_payout(conn, fields, organization_id, event_created_at)
    if fields.status == "paid" and outcome != repository.UNCHANGED:
        lines = await fetch_balance_transactions(banking, fields.stripe_payout_id, fields.stripe_account_id)
        await repository.replace_balance_transactions(conn, payout_id, lines)
    return outcome


async def apply_payout_event(banking: Banking, conn: Connection, event: InboundEvent) -> str:
    """`payout.*` (platform or Connect): upsert; a paid payout also gets its balance transactions."""
    obj = event.data_object
    if not event.type.startswith("payout.") or obj.get("object") != "payout" or not obj.get("id"):
        return IGNORED
    created = event.created_at or _time(event.payload.get("created"))
    await _store(banking, conn, payout_fields(obj, event.account or ""), created)
    return APPLIED


@dataclasses.dataclass
class PayoutSyncCounts(SyncCounts):
    inaccessible_accounts: int = 0  # connected accounts the platform can no longer read


async def sync_payouts(banking: Banking) -> PayoutSyncCounts:
    """Pulls the payouts of the platform and of every known connected account from Stripe."""
    counts = PayoutSyncCounts()
    await banking.organization_names()  # learns connected accounts of every organisation
    async with banking.pool.acquire() as conn:
        accounts = {"", *banking.connected_accounts, *await repository.known_accounts(conn)}
        for account in sorted(accounts):
            params: dict[str, Any] = {"limit": 100}
            while True:
                try:
                    with stripe_errors():
                        page = await banking.stripe.v1.payouts.list_async(
                            params=params,  # type: ignore[arg-type]
                            options=_options(account),  # type: ignore[arg-type]
                        )
                except Conflict as error:
                    # An account that left the platform: the other organisations' payouts are still pulled.
                    if account and error.code == "stripe_account_inaccessible":
                        counts.inaccessible_accounts += 1
                        log.warning("payouts of %s not pulled: the platform has no access to it", account)
                        break
                    raise
                for payout in page.data:
                    counts.fetched += 1
                    outcome = await _store(banking, conn, payout_fields(payout.to_dict(), account), None)
                    counts.inserted += outcome == repository.INSERTED
                    counts.updated += outcome == repository.UPDATED
                if not page.has_more or not page.data:
                    break
                params["starting_after"] = page.data[-1].id
        for row in await repository.payouts_needing_balance(conn):
            lines = await fetch_balance_transactions(banking, row["stripe_payout_id"], row["stripe_account_id"])
            await repository.replace_balance_transactions(conn, str(row["id"]), lines)
        for account in await repository.unresolved_accounts(conn):
            organization_id = await banking.organization_of(account)
            if organization_id:
                await repository.set_payout_organization(conn, account, organization_id)
        await auditing.run_action(
            conn,
            "payouts.synced",
            {**dataclasses.asdict(counts), "accounts": len(accounts)},
            changed=bool(counts.inserted or counts.updated),
        )
    return counts


async def create_payout(banking: Banking, organization_id: str, idempotency_key: str, amount: int) -> str:
    """A payout of the organisation's available balance (or `amount` of it) in its currency, when its
    schedule is manual; the id of the stored payout.

    The request is recorded first with its amount (the balance, when none is given), then Stripe is
    asked under a key derived from it: a retry, even after a crash between the two, sends the same
    request under the same key and gets the same payout back."""
    if not idempotency_key:
        raise InvalidArgument(
            "an idempotency key is required", "idempotency_key_required", [FieldError("Idempotency-Key", "required")]
        )
    if amount < 0:
        raise InvalidArgument("amount must be positive", "validation_error", [FieldError("amount", "must be positive")])
    request_org = accounts_pb.GetOrganizationRequest(organization_id=organization_id)
    org = (await call(banking.accounts.GetOrganization, request_org)).organization
    if not org.stripe_account_id:
        raise Conflict("the organisation has no Stripe account yet", "stripe_account_missing")
    options = _options(org.stripe_account_id)
    async with banking.pool.acquire() as conn:
        request = await repository.payout_request(conn, organization_id, idempotency_key)
    if request is None:
        currency = org.default_currency or DEFAULT_CURRENCY
        with stripe_errors():
            account = await banking.stripe.v1.accounts.retrieve_async(org.stripe_account_id)
            schedule = ((account.to_dict().get("settings") or {}).get("payouts") or {}).get("schedule") or {}
            if schedule.get("interval") != "manual":
                raise Conflict(
                    "payouts are made by Stripe on this organisation's schedule; set it to manual first",
                    "payout_schedule_not_manual",
                )
            if amount == 0:
                balance = await banking.stripe.v1.balance.retrieve_async(options=options)  # type: ignore[arg-type]
                amount = sum(int(b.amount) for b in balance.available if b.currency == currency)
        if amount <= 0:
            raise Conflict("there is no available balance to pay out", "balance_insufficient")
        async with banking.pool.acquire() as conn:
            request = await repository.add_payout_request(conn, organization_id, idempotency_key, amount, currency)
    with stripe_errors():
        payout = await banking.stripe.v1.payouts.create_async(
            params={"amount": request["amount"], "currency": request["currency"]},
            options={**options, "idempotency_key": f"collect-payout-{organization_id}-{idempotency_key}"},  # type: ignore[arg-type]
        )
    fields = payout_fields(payout.to_dict(), org.stripe_account_id)
    async with banking.pool.acquire() as conn, conn.transaction():
        await repository.upsert_payout(conn, fields, organization_id, None)
        await repository.set_payout_request_payout(conn, organization_id, idempotency_key, fields.stripe_payout_id)
        row_id = await repository.payout_id(conn, fields.stripe_payout_id)
        if not request["stripe_payout_id"]:  # not a replay of a request already answered
            await audit.record(
                conn,
                "payout.created",
                targets={"payout_id": row_id, "stripe_payout": fields.stripe_payout_id},
                after={"amount": request["amount"], "currency": request["currency"]},
                organization_id=organization_id,
            )
    log.info("manual payout created", extra={"organization_id": organization_id, "payout": fields.stripe_payout_id})
    return row_id
