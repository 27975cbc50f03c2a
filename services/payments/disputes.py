"""Disputes (chargebacks): recorded on their payment from Stripe's `charge.dispute.*` events, listed,
answered with evidence, and Connect's rules applied once.

Every event re-reads the dispute at Stripe and converges on it (`sync`), so duplicates and any
order give one result. Who pays:
- **direct** charges: Stripe debits the connected account (the organisation); nothing to move,
  the withdrawal, its fee and a reinstatement are recorded;
- **destination** charges: Stripe debits the platform, which takes the amount back from the
  organisation by reversing the charge's transfer once the funds are withdrawn, and gives it back
  with a new transfer if the dispute is won.
Each of those two Stripe calls is made once: its idempotency key derives from the dispute, and
before calling, the transfer's reversals (or the dispute's transfer group) are read for the one
made earlier (a call whose answer or whose record was lost, also after Stripe forgot the key).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from runtime import logs
from runtime.auth import Caller
from runtime.db import Connection
from runtime.errors import Conflict, FieldError, InvalidArgument, NotFound
from runtime.inbox import APPLIED, IGNORED, InboundEvent
from runtime.pagination import decode_cursor, next_page, page_limit
from services.payments import auditing, books
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.domain import (
    DISPUTE_CLOSED,
    DISPUTE_OPEN,
    BookMove,
    Dispute,
    Payment,
    advance_dispute,
    dispute_money,
    evidence_problems,
    local_day,
    stripe_account_option,
    transfer_to_reverse,
)

log = logging.getLogger("payments.disputes")
EVENT_PREFIX = "charge.dispute."


def _moment(unix: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix else None


async def apply_event(conn: Connection, ctx: Context, event: InboundEvent) -> str:
    """A `charge.dispute.*` event: the dispute re-read at Stripe, applied to its (locked) payment."""
    obj = event.data_object
    stripe_id, intent_id = str(obj.get("id") or ""), str(obj.get("payment_intent") or "")
    if not stripe_id or not intent_id:
        return IGNORED
    payment = await repo.get_payment_by_intent(conn, intent_id, for_update=True)
    if payment is None:
        return IGNORED
    current = await ctx.stripe.retrieve_dispute(stripe_id, stripe_account_option(payment))
    return APPLIED if await sync(conn, ctx, payment, current) else IGNORED


async def sync(
    conn: Connection, ctx: Context, payment: Payment, found: dict[str, Any], *, retry_refused: bool = False
) -> bool:
    """Makes our record of the dispute what Stripe says now (the payment is locked); True when it
    changed. A transfer move Stripe refused is tried again only by the sweeper (`retry_refused`)."""
    dispute = await repo.get_dispute_by_stripe_id(conn, str(found["id"]), for_update=True)
    changed = False
    if dispute is None:
        dispute = await _record(conn, ctx, payment, found)
        changed = True
    elif advance_dispute(dispute, str(found.get("status") or "")):
        changed = True
    details = found.get("evidence_details") or {}
    due_by = _moment(int(details.get("due_by") or 0))
    submissions = int(details.get("submission_count") or 0)
    if (due_by, submissions) != (dispute.evidence_due_by, dispute.evidence_submissions):
        dispute.evidence_due_by, dispute.evidence_submissions = due_by, submissions
        changed = True
    changed = await _apply_money(conn, ctx, payment, dispute, found, retry_refused) or changed
    if changed:
        await repo.save_dispute(conn, dispute)
        logs.event(
            "dispute.updated",
            dispute_id=dispute.id,
            status=dispute.status,
            withdrawn=dispute.withdrawn,
            reinstated=dispute.reinstated,
            transfer_reversed=dispute.transfer_reversed,
            transfer_returned=dispute.transfer_returned,
        )
    return changed


async def _record(conn: Connection, ctx: Context, payment: Payment, found: dict[str, Any]) -> Dispute:
    """A dispute first seen: counted (once) on the day it was opened, in the organisation's time zone."""
    timezone = (await ctx.policies.get(payment.organization_id)).timezone
    created = _moment(int(found.get("created") or 0)) or datetime.now(UTC)
    dispute = Dispute(
        id=str(uuid.uuid4()),
        stripe_dispute_id=str(found["id"]),
        payment_id=payment.id,
        organization_id=payment.organization_id,
        member_id=payment.member_id,
        charge_model=payment.charge_model,
        amount=int(found.get("amount") or 0),
        currency=str(found.get("currency") or payment.currency),
        reason=str(found.get("reason") or ""),
        status="needs_response",
        evidence_due_by=None,
        local_date=local_day(created, timezone),
        created_at=created,
    )
    advance_dispute(dispute, str(found.get("status") or ""))
    await repo.insert_dispute(conn, dispute)
    await repo.add_to_day(conn, payment, disputed_count=1, disputed=dispute.amount, day=dispute.local_date)
    logs.event("dispute.opened", dispute_id=dispute.id, payment_id=payment.id, amount=dispute.amount)
    return dispute


async def _apply_money(
    conn: Connection, ctx: Context, payment: Payment, dispute: Dispute, found: dict[str, Any], retry_refused: bool
) -> bool:
    """Withdrawal, reinstatement and loss, each recorded and booked once; under destination charges
    the transfer reversed once the funds are withdrawn and given back once they are reinstated, each
    move booked when made (a move the sweeper makes days later is booked on that day)."""
    changed = False
    withdrawn, fee, withdrawn_at, reinstated, reinstated_at = dispute_money(found)
    if withdrawn and not dispute.withdrawn:
        dispute.withdrawn, dispute.dispute_fee = withdrawn, fee
        dispute.withdrawn_at = _moment(withdrawn_at) or datetime.now(UTC)
        await books.book(conn, ctx, payment, BookMove("dispute", dispute.id, withdrawn, dispute_fee=fee))
        changed = True
    if reinstated and not dispute.reinstated:
        dispute.reinstated = reinstated
        dispute.reinstated_at = _moment(reinstated_at) or datetime.now(UTC)
        await books.book(conn, ctx, payment, BookMove("dispute_won", dispute.id, reinstated))
        changed = True
    refused_before = dispute.transfer_refused_at is not None and not retry_refused
    if payment.charge_model == "destination" and dispute.withdrawn and payment.stripe_account_id and not refused_before:
        reversal, returned = dispute.stripe_transfer_reversal_id, dispute.stripe_return_transfer_id
        changed = await _recover_from_organization(ctx, payment, dispute, found) or changed
        if dispute.stripe_transfer_reversal_id != reversal:
            # Made after the loss was booked, the reversal is the organisation's share of that loss.
            kind = "dispute_lost_reversal" if _loss_booked(dispute) else "dispute_reversal"
            taken = dispute.transfer_reversed
            await books.book(conn, ctx, payment, BookMove(kind, dispute.id, taken, transfer_reversed=taken))
            await auditing.transfer_action(conn, "dispute.transfer_reversed", dispute)
        if dispute.stripe_return_transfer_id != returned:
            back = dispute.transfer_returned
            await books.book(conn, ctx, payment, BookMove("dispute_return", dispute.id, back, transfer_reversed=back))
            await auditing.transfer_action(conn, "dispute.transfer_returned", dispute)
    if dispute.status in DISPUTE_CLOSED and dispute.closed_at is None:
        dispute.closed_at = datetime.now(UTC)
        if dispute.status == "lost":
            # The organisation's share is what was reversed so far; a reversal still due books the rest.
            loss = BookMove("dispute_lost", dispute.id, dispute.amount, transfer_reversed=dispute.transfer_reversed)
            await books.book(conn, ctx, payment, loss)
        changed = True
    return changed


def _loss_booked(dispute: Dispute) -> bool:
    return dispute.status == "lost" and dispute.closed_at is not None


async def _recover_from_organization(ctx: Context, payment: Payment, dispute: Dispute, found: dict[str, Any]) -> bool:
    """Destination charges: reverse the charge's transfer (the organisation bears the dispute, as
    Stripe advises platforms), and once the dispute is won give the reversed amount back.

    A move Stripe refuses (the platform's balance is short to give the amount back, say) does not
    hold the dispute's own state back: it is recorded as due and the sweeper tries it again."""
    changed = False
    if dispute.stripe_transfer_id is None:
        charge = await ctx.stripe.retrieve_charge(str(found.get("charge") or ""), None)
        transfer_id = charge.get("transfer")
        if isinstance(transfer_id, dict):
            transfer_id = transfer_id.get("id")
        if not transfer_id:
            return False  # no transfer was made: nothing to take back
        dispute.stripe_transfer_id = str(transfer_id)
        changed = True
    try:
        changed = await _reverse_transfer(ctx, dispute) or changed
        changed = await _return_transfer(ctx, payment, dispute) or changed
    except InvalidArgument as refused:
        log.warning("dispute %s: Stripe refused a transfer move: %s", dispute.id, refused.message)
        # Stripe answers a key's first answer again, its refusal too: the next try needs a new key.
        dispute.transfer_refused_at = datetime.now(UTC)
        return True
    if dispute.transfer_refused_at is not None:
        dispute.transfer_refused_at = None
        changed = True
    return changed


async def _reverse_transfer(ctx: Context, dispute: Dispute) -> bool:
    """The reversal made once: found among the transfer's reversals if an earlier call made it."""
    if dispute.stripe_transfer_reversal_id is not None or dispute.stripe_transfer_id is None:
        return False
    transfer = await ctx.stripe.retrieve_transfer(dispute.stripe_transfer_id)
    ours = next(
        (
            r
            for r in (transfer.get("reversals") or {}).get("data") or []
            if (r.get("metadata") or {}).get("stripe_dispute_id") == dispute.stripe_dispute_id
        ),
        None,
    )
    if ours is None:
        amount = transfer_to_reverse(dispute, transfer)
        if dispute.reinstated or amount <= 0:
            return False  # won before anything was taken back, or nothing left to take
        key = _key(dispute, "reverse_transfer")
        ours = await ctx.stripe.reverse_transfer(dispute.stripe_transfer_id, amount, dispute.stripe_dispute_id, key)
    dispute.stripe_transfer_reversal_id = str(ours["id"])
    dispute.transfer_reversed = int(ours.get("amount") or 0)
    return True


async def _return_transfer(ctx: Context, payment: Payment, dispute: Dispute) -> bool:
    """The reversed amount given back once the dispute is won: found by its transfer group if an
    earlier call made it."""
    if not (dispute.reinstated and dispute.transfer_reversed) or dispute.stripe_return_transfer_id is not None:
        return False
    group = f"dispute_{dispute.stripe_dispute_id}"
    earlier = await ctx.stripe.transfers_in_group(group)
    back = earlier[0] if earlier else None
    if back is None:
        key = _key(dispute, "return_transfer")
        assert payment.stripe_account_id is not None
        back = await ctx.stripe.create_transfer(
            dispute.transfer_reversed,
            dispute.currency,
            payment.stripe_account_id,
            group,
            dispute.stripe_dispute_id,
            key,
        )
    dispute.stripe_return_transfer_id = str(back["id"])
    dispute.transfer_returned = int(back.get("amount") or 0)
    return True


def _key(dispute: Dispute, move: str) -> str:
    """The Stripe idempotency key of a transfer move: from the dispute, and after a refusal from
    when it was refused (a retry after a crash sends the key of the attempt it repeats)."""
    attempt = int(dispute.transfer_refused_at.timestamp() * 1000) if dispute.transfer_refused_at else 0
    return f"dispute:{dispute.stripe_dispute_id}:{move}:{attempt}"


async def sweep_transfers(ctx: Context, older_than_seconds: float, limit: int = 50) -> int:
    """Tries again the transfer moves Stripe refused at least `older_than_seconds` ago (see
    `_recover_from_organization`), each dispute re-read at Stripe and applied like an event;
    returns how many disputes it went through."""
    done = 0
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await repo.lock_dispute_sweep(conn):
            return 0  # another replica is sweeping
        for payment_id, stripe_dispute_id in await repo.disputes_with_transfer_due(conn, older_than_seconds, limit):
            payment = await repo.get_payment(conn, payment_id)
            assert payment is not None
            found = await ctx.stripe.retrieve_dispute(stripe_dispute_id, stripe_account_option(payment))
            await sync(conn, ctx, payment, found, retry_refused=True)
            done += 1
    return done


async def list_disputes(ctx: Context, organization_id: str, limit: int, cursor: str) -> tuple[list[Dispute], str]:
    """A page of disputes, newest first: the organisation's, or every one for '' (platform admins)."""
    size = page_limit(limit)
    async with ctx.pool.acquire() as conn:
        found = await repo.list_disputes(conn, organization_id, decode_cursor(cursor), size + 1)
    page, next_cursor = next_page(found, size)
    return page, next_cursor


async def _visible(ctx: Context, caller: Caller, dispute_id: str) -> Dispute:
    """The dispute if the caller may see it: a platform admin any, a member only its organisation's."""
    async with ctx.pool.acquire() as conn:
        dispute = await repo.get_dispute(conn, dispute_id)
    if dispute is None or (not caller.is_platform and dispute.organization_id != caller.organization_id):
        raise NotFound("dispute not found", "dispute_not_found")
    return dispute


async def submit_evidence(
    ctx: Context, caller: Caller, dispute_id: str, evidence: dict[str, str], submit: bool
) -> Dispute:
    """Sends evidence to Stripe (staged, or submitted for the bank's decision) and records the
    dispute as Stripe answers it. The evidence itself is not stored: it holds the customer's data."""
    problems = evidence_problems(evidence)
    if not evidence and submit is False:
        problems.append(("evidence", "nothing to stage"))
    if problems:
        raise InvalidArgument(
            "the evidence is invalid", "validation_error", [FieldError(name, message) for name, message in problems]
        )
    dispute = await _visible(ctx, caller, dispute_id)
    if dispute.status not in DISPUTE_OPEN:
        raise Conflict(f"the dispute cannot take evidence while {dispute.status}", "dispute_not_open")
    async with ctx.pool.acquire() as conn:
        payment = await repo.get_payment(conn, dispute.payment_id)
    assert payment is not None
    answered = await ctx.stripe.update_dispute(
        dispute.stripe_dispute_id, stripe_account_option(payment), {k: str(v) for k, v in evidence.items()}, submit
    )
    async with ctx.pool.acquire() as conn, conn.transaction():
        locked = await repo.get_payment(conn, payment.id, for_update=True)
        assert locked is not None
        await sync(conn, ctx, locked, answered)
        recorded = await repo.get_dispute(conn, dispute.id)
        assert recorded is not None
        await auditing.evidence_action(conn, recorded, list(evidence), submit)
    return recorded
