"""When Stripe pays out an organisation's balance: its connected account's payout schedule.

Stripe holds the schedule (`settings.payouts.schedule`); the platform only asks for a change and
answers what Stripe then has, so there is no copy to drift. The closed sets are the proto's enums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collect.accounts.v1 import accounts_pb2 as pb

from runtime.audit import current_record
from runtime.errors import FieldError, InvalidArgument
from runtime.proto import EnumNames
from services.accounts import audit_trail
from services.accounts.connect import Connect, stripe_call

__all__ = ["INTERVALS", "WEEKDAYS", "PayoutSchedule", "payout_schedule", "update_payout_schedule"]

INTERVALS = EnumNames(pb.PayoutInterval)
WEEKDAYS = EnumNames(pb.Weekday)


@dataclass(frozen=True)
class PayoutSchedule:
    interval: str
    weekly_anchor: str = ""
    delay_days: int = 0

    @classmethod
    def from_stripe(cls, account: dict[str, Any]) -> PayoutSchedule:
        schedule = ((account.get("settings") or {}).get("payouts") or {}).get("schedule") or {}
        return cls(
            interval=str(schedule.get("interval") or ""),
            weekly_anchor=str(schedule.get("weekly_anchor") or ""),
            delay_days=int(schedule.get("delay_days") or 0),
        )

    def message(self) -> pb.PayoutSchedule:
        return pb.PayoutSchedule(
            interval=INTERVALS.number(self.interval),  # type: ignore[arg-type]
            weekly_anchor=WEEKDAYS.number(self.weekly_anchor),  # type: ignore[arg-type]
            delay_days=self.delay_days,
        )


def _checked(asked: pb.PayoutSchedule) -> dict[str, str]:
    interval, anchor = INTERVALS.name(asked.interval), WEEKDAYS.name(asked.weekly_anchor)
    errors = []
    if not interval:
        errors.append(FieldError("interval", f"must be one of {', '.join(INTERVALS.names)}"))
    elif interval == "weekly" and not anchor:
        errors.append(FieldError("weekly_anchor", f"must be one of {', '.join(WEEKDAYS.names)} with a weekly schedule"))
    elif interval != "weekly" and anchor:
        errors.append(FieldError("weekly_anchor", "is only for a weekly schedule"))
    if errors:
        raise InvalidArgument("the payout schedule is invalid", "validation_error", errors)
    return {"interval": interval, **({"weekly_anchor": anchor} if anchor else {})}


async def update_payout_schedule(connect: Connect, organization_id: str, asked: pb.PayoutSchedule) -> PayoutSchedule:
    """Asks Stripe for the schedule (checked first) and answers the account's schedule as Stripe has it."""
    schedule = _checked(asked)
    account_id = (await connect.account_of(organization_id)).account_id
    async with stripe_call():
        account = await connect.stripe.v1.accounts.update_async(
            account_id,
            params={"settings": {"payouts": {"schedule": schedule}}},  # type: ignore[arg-type]
        )
    answered = PayoutSchedule.from_stripe(account.to_dict())
    async with connect.pool.acquire() as conn:  # Stripe holds the schedule: the entry follows its answer
        await audit_trail.record(
            conn,
            current_record(
                "payout_schedule.updated",
                targets={"stripe_account": account_id},
                after={"interval": answered.interval, "weekly_anchor": answered.weekly_anchor},
                organization_id=organization_id,
            ),
        )
    return answered


async def payout_schedule(connect: Connect, organization_id: str) -> PayoutSchedule:
    """The account's schedule as Stripe has it now."""
    account_id = (await connect.account_of(organization_id)).account_id
    async with stripe_call():
        account = await connect.stripe.v1.accounts.retrieve_async(account_id)
    return PayoutSchedule.from_stripe(account.to_dict())
