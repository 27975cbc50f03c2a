"""Reconciliation runs (rules), manual matches and unmatching; persistence is idempotent.

A run drops automatic matches that no longer hold (payout failed, credit reversed), then
matches only what is still open: existing matches stay, manual ones are never undone by the
rules, and items a person unmatched are left to people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from runtime import audit
from runtime.errors import Conflict, FieldError, InvalidArgument, NotFound
from runtime.logs import event
from services.banking import auditing, repository
from services.banking.context import RECONCILE_LOCK
from services.banking.matching import MANUAL, CreditItem, MatchRules, PayoutItem, match_payouts
from services.banking.sync import advisory_lock


@dataclass
class RunOutcome:
    matched: int
    unmatched_payouts: int
    unmatched_credits: int
    created: int
    removed: int


def _utc_start(day: date | None, extra_days: int = 0) -> datetime | None:
    if day is None:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=extra_days)


def _payout_item(row: asyncpg.Record) -> PayoutItem:
    references = tuple(r for r in (row["stripe_payout_id"], row["trace_id"], row["statement_descriptor"]) if r)
    return PayoutItem(str(row["id"]), row["amount"], row["currency"], row["arrival_date"].date(), references)


def _credit_item(row: asyncpg.Record) -> CreditItem:
    return CreditItem(
        row["id"], row["amount_cents"], row["currency"], row["day"].date(), row["label"] or "", row["reference"] or ""
    )


async def run_reconciliation(
    pool: asyncpg.Pool, rules: MatchRules, from_day: date | None = None, to_day: date | None = None
) -> RunOutcome:
    """Matches open paid payouts (arriving from..to) with open credits (within the date window around it)."""
    if from_day and to_day and from_day > to_day:
        raise InvalidArgument("from must not be after to", "validation_error", [FieldError("from", "after to")])
    payout_start, payout_end = _utc_start(from_day), _utc_start(to_day, 1)
    # A credit settles from days_before before to days_after after its payout's arrival date.
    credit_start = _utc_start(from_day, -rules.days_before)
    credit_end = _utc_start(to_day, 1 + rules.days_after)
    async with advisory_lock(pool, RECONCILE_LOCK, wait=True) as conn:
        assert conn is not None
        async with conn.transaction():  # the run's changes and its audit record commit together
            removed = await repository.drop_stale_automatic_matches(conn)
            payouts = [_payout_item(r) for r in await repository.open_payouts(conn, payout_start, payout_end)]
            credits = [_credit_item(r) for r in await repository.open_credits(conn, credit_start, credit_end)]
            result = match_payouts(payouts, credits, rules)
            # Manual matches and unmatches wait for this lock, so what was open when read is still open.
            created = await repository.insert_rule_matches(
                conn, [(m.credit_id, m.payout_ids, m.rule, m.explanation, m.difference) for m in result.matches]
            )
            matched = await repository.count_matches(conn, credit_start, credit_end)
            await auditing.run_action(
                conn,
                "reconciliation.ran",
                {
                    "from": from_day.isoformat() if from_day else None,
                    "to": to_day.isoformat() if to_day else None,
                    "created": created,
                    "removed": removed,
                    "matched": matched,
                    "unmatched_payouts": len(result.unmatched_payouts),
                    "unmatched_credits": len(result.unmatched_credits),
                },
                changed=bool(created or removed),
            )
    for match in result.matches:
        event(
            "payout.matched",
            bank_transaction_id=match.credit_id,
            payout_ids=list(match.payout_ids),
            rule=match.rule,
            difference=match.difference,
        )
    return RunOutcome(
        matched=matched,
        unmatched_payouts=len(result.unmatched_payouts),
        unmatched_credits=len(result.unmatched_credits),
        created=created,
        removed=removed,
    )


async def match_manually(pool: asyncpg.Pool, payout_ids: list[str], credit_id: str, note: str) -> str:
    """A person's decision: any payouts with one credit; the rules never undo it."""
    errors: list[FieldError] = []
    if not payout_ids:
        errors.append(FieldError("payout_ids", "at least one payout is required"))
    if not credit_id:
        errors.append(FieldError("bank_transaction_id", "is required"))
    if errors:
        raise InvalidArgument("the match is incomplete", "validation_error", errors)
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_reconciliation(conn, RECONCILE_LOCK)
        try:
            payouts = await repository.payouts_by_ids(conn, payout_ids)
        except ValueError:
            raise NotFound("payout not found", "payout_not_found") from None
        if len({str(p["id"]) for p in payouts}) != len(set(payout_ids)):
            raise NotFound("payout not found", "payout_not_found")
        credits = await repository.bank_transactions_by_ids(conn, [credit_id])
        if not credits or credits[0]["side"] != "credit":
            raise NotFound("bank credit not found", "bank_transaction_not_found")
        if any(p["match_id"] for p in payouts) or credits[0]["reconciled"]:
            raise Conflict("a payout or the credit is already matched; unmatch it first", "already_matched")
        total = sum(p["amount"] for p in payouts)
        difference = credits[0]["amount_cents"] - total
        explanation = f"matched by hand{': ' + note.strip()[:200] if note.strip() else ''}"
        match_id = await repository.insert_match(
            conn, credit_id, sorted(str(p["id"]) for p in payouts), MANUAL, explanation, difference, True
        )
        if match_id is None:
            raise Conflict("a payout or the credit is already matched; unmatch it first", "already_matched")
        await audit.record(
            conn,
            "reconciliation.matched",
            targets={
                "match_id": match_id,
                "bank_transaction_id": credit_id,
                "payout_ids": ",".join(sorted(payout_ids)),
            },
            after={"difference": difference},
        )
    event("payout.matched", match_id=match_id, bank_transaction_id=credit_id, payout_ids=payout_ids, rule=MANUAL)
    return match_id


async def unmatch(pool: asyncpg.Pool, match_id: str) -> None:
    """Removes a match; its payouts and credit are then left to people (the rules skip them)."""
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_reconciliation(conn, RECONCILE_LOCK)
        found = await repository.get_match(conn, match_id)
        if found is None:
            raise NotFound("match not found", "match_not_found")
        await repository.delete_match(conn, match_id)
        await repository.set_auto_match(conn, list(found["payout_ids"]), found["bank_transaction_id"], False)
        await audit.record(
            conn,
            "reconciliation.unmatched",
            targets={"match_id": match_id, "bank_transaction_id": found["bank_transaction_id"]},
        )
