"""Offline batches: sales the app queued without network, synced later.

Cash becomes a succeeded payment with no Stripe call; a card item links the PaymentIntent the
phone forwarded, once checked against Stripe and the organisation. The same `local_id` twice
(in one batch or across batches) is `duplicate` and changes nothing; a bad item is `rejected`
with its reason and never fails the others.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from runtime.auth import Caller
from runtime.errors import DomainError, FieldError, InvalidArgument
from services.payments import auditing
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.creating import take_rate
from services.payments.domain import OFFLINE_METHODS, Payment, Policy, currency_problem
from services.payments.lifecycle import record_success

MAX_ITEMS = 500
_PAID = ("succeeded", "requires_capture", "processing")


@dataclass(frozen=True)
class OfflineItem:
    local_id: str
    amount: int
    currency: str
    method: str
    created_at: datetime | None
    stripe_payment_intent_id: str = ""


@dataclass
class ItemResult:
    local_id: str
    status: str
    payment_id: str = ""
    error: str = ""


def _problem(item: OfflineItem, ctx: Context, policy: Policy, now: datetime) -> str:
    if not item.local_id or len(item.local_id) > 200:
        return "local_id is required (up to 200 characters)"
    if item.method not in OFFLINE_METHODS:
        return "method must be cash or card"
    low = ctx.settings.min_amount if item.method == "card" else 1
    if not low <= item.amount <= ctx.settings.max_amount:
        return f"amount must be between {low} and {ctx.settings.max_amount}"
    if problem := currency_problem(item.currency or policy.default_currency, policy):
        return problem
    if item.created_at is None:
        return "created_at is required"
    settings = ctx.settings
    if item.created_at > now + timedelta(seconds=settings.offline_max_ahead_seconds):
        return f"created_at is more than {settings.offline_max_ahead_seconds} seconds in the future"
    if item.created_at < now - timedelta(days=settings.offline_max_age_days):
        return f"created_at is more than {settings.offline_max_age_days} days old"
    if item.method == "card":
        if not item.stripe_payment_intent_id.startswith("pi_"):
            return "stripe_payment_intent_id is required for a card sale"
        if not policy.stripe_account_id:
            return "the organisation has no Stripe account"
    elif item.stripe_payment_intent_id:
        return "a cash sale has no stripe_payment_intent_id"
    return ""


async def submit_batch(
    ctx: Context, caller: Caller, organization_id: str, items: list[OfflineItem]
) -> list[ItemResult]:
    if len(items) > MAX_ITEMS:
        raise InvalidArgument(
            f"a batch holds at most {MAX_ITEMS} items", "batch_too_large", [FieldError("transactions", "too many")]
        )
    async with ctx.pool.acquire() as conn:  # each sale counts in the member's rate (a batch at most a window's worth)
        await take_rate(ctx, conn, caller.member_id, len(items))
    policy = await ctx.policies.get(organization_id)
    now = datetime.now(UTC)
    async with ctx.pool.acquire() as conn:
        existing = await repo.payment_ids_by_local_id(
            conn, organization_id, caller.member_id, [i.local_id for i in items if i.local_id]
        )
    results: list[ItemResult] = []
    first_of: dict[str, int] = {}
    todo: list[int] = []
    for index, item in enumerate(items):
        result = ItemResult(item.local_id, "rejected")
        results.append(result)
        if item.local_id in existing:
            result.status, result.payment_id = "duplicate", existing[item.local_id]
        elif item.local_id and item.local_id in first_of:
            result.status = "duplicate"  # payment id filled in once the first is recorded
        elif problem := _problem(item, ctx, policy, now):
            result.error = problem
        else:
            first_of[item.local_id] = index
            todo.append(index)
    intents = await _fetch_intents(ctx, policy, [items[i] for i in todo if items[i].method == "card"])
    for index in todo:
        await _record(ctx, caller, policy, items[index], results[index], intents)
    for index, result in enumerate(results):
        first = first_of.get(items[index].local_id)
        if result.status == "duplicate" and not result.payment_id and first is not None:
            result.payment_id = results[first].payment_id
    return results


async def _fetch_intents(ctx: Context, policy: Policy, items: list[OfflineItem]) -> dict[str, dict[str, Any] | str]:
    """Each forwarded PaymentIntent as Stripe knows it, or why it cannot be used."""
    gate = asyncio.Semaphore(8)
    account = policy.stripe_account_id if policy.charge_model == "direct" else None

    async def fetch(intent_id: str) -> tuple[str, dict[str, Any] | str]:
        async with gate:
            try:
                return intent_id, await ctx.stripe.retrieve_intent(intent_id, account)
            except DomainError as error:
                if error.code == "stripe_resource_missing":
                    return intent_id, "the PaymentIntent is unknown to this organisation's Stripe account"
                return intent_id, f"the PaymentIntent could not be checked: {error.message}"

    found = await asyncio.gather(*(fetch(i) for i in {item.stripe_payment_intent_id for item in items}))
    return dict(found)


def _intent_problem(item: OfflineItem, intent: dict[str, Any], policy: Policy, organization_id: str) -> str:
    metadata = intent.get("metadata") or {}
    if metadata.get("organization_id") not in (None, "", organization_id):
        return "the PaymentIntent belongs to another organisation"
    if policy.charge_model == "destination":
        destination = (intent.get("transfer_data") or {}).get("destination")
        if destination != policy.stripe_account_id and intent.get("on_behalf_of") != policy.stripe_account_id:
            return "the PaymentIntent belongs to another organisation"
    if int(intent.get("amount") or 0) != item.amount:
        return "the amount differs from the PaymentIntent's"
    if item.currency and str(intent.get("currency")) != item.currency:
        return "the currency differs from the PaymentIntent's"
    if intent.get("status") not in _PAID:
        return f"the PaymentIntent is not paid (status {intent.get('status')})"
    return ""


async def _record(
    ctx: Context,
    caller: Caller,
    policy: Policy,
    item: OfflineItem,
    result: ItemResult,
    intents: dict[str, dict[str, Any] | str],
) -> None:
    assert item.created_at is not None
    organization_id = policy.organization_id
    payment_id, now = str(uuid.uuid4()), datetime.now(UTC)
    if item.method == "card":
        intent = intents.get(item.stripe_payment_intent_id)
        if not isinstance(intent, dict):
            result.error = intent or "the PaymentIntent could not be checked"
            return
        if problem := _intent_problem(item, intent, policy, organization_id):
            result.error = problem
            return
        payment = Payment.from_intent(payment_id, policy, caller.member_id, item.local_id, intent, item.created_at, now)
    else:
        currency = item.currency or policy.default_currency
        payment = Payment.cash(
            payment_id, policy, caller.member_id, item.local_id, item.amount, currency, item.created_at, now
        )
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await repo.insert_payment(conn, payment):
            if payment.status == "succeeded":
                await record_success(conn, ctx, payment)
            await auditing.payment_action(conn, "payment.recorded_offline", payment)
            result.status, result.payment_id = "created", payment.id
            return
    async with ctx.pool.acquire() as conn:
        known = await repo.payment_ids_by_local_id(conn, organization_id, caller.member_id, [item.local_id])
        if item.local_id in known:
            result.status, result.payment_id = "duplicate", known[item.local_id]
            return
        other = await repo.get_payment_by_intent(conn, payment.stripe_payment_intent_id or "")
    result.error = f"the PaymentIntent is already recorded as payment {other.id if other else '?'}"
