"""Transfers to connected accounts and their reversals."""

from __future__ import annotations

from ..context import Ctx
from ..currencies import checked_currency
from ..money import create_transfer, reverse_transfer
from ..store import StripeObject, created_filter, paginate
from ..wire import apply_metadata, get_int, get_str, invalid, not_found


def _platform_only(ctx: Ctx) -> None:
    if not ctx.is_platform:
        raise invalid("Transfers are created by the platform, without a Stripe-Account header.")


def create(ctx: Ctx) -> StripeObject:
    _platform_only(ctx)
    amount = get_int(ctx.params, "amount", required=True, minimum=1)
    currency = get_str(ctx.params, "currency", required=True)
    destination = get_str(ctx.params, "destination", required=True)
    assert amount is not None and currency is not None and destination is not None
    if ctx.state.account(destination) is None or destination == ctx.state.platform_id:
        raise not_found("account", destination, param="destination")
    transfer = create_transfer(
        ctx,
        amount,
        checked_currency(currency),
        destination,
        source_transaction=get_str(ctx.params, "source_transaction"),
        description=get_str(ctx.params, "description"),
    )
    transfer["transfer_group"] = get_str(ctx.params, "transfer_group")
    apply_metadata(transfer, ctx.params)
    return transfer


def retrieve(ctx: Ctx, transfer_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, transfer_id, "transfer")


def update(ctx: Ctx, transfer_id: str) -> StripeObject:
    transfer = retrieve(ctx, transfer_id)
    if "description" in ctx.params:
        transfer["description"] = ctx.params["description"] or None
    apply_metadata(transfer, ctx.params)
    return transfer


def list_transfers(ctx: Ctx) -> StripeObject:
    destination = ctx.params.get("destination")
    group = ctx.params.get("transfer_group")
    created = created_filter(ctx.params)

    def keep(transfer: StripeObject) -> bool:
        return (
            (not destination or transfer["destination"] == destination)
            and (not group or transfer["transfer_group"] == group)
            and (created is None or created(transfer))
        )

    return paginate(ctx.state.store.newest_first(ctx.account, "transfer"), ctx.params, "/v1/transfers", keep)


def create_reversal(ctx: Ctx, transfer_id: str) -> StripeObject:
    transfer = retrieve(ctx, transfer_id)
    remaining = transfer["amount"] - transfer["amount_reversed"]
    amount = get_int(ctx.params, "amount", minimum=1) or remaining
    if remaining <= 0:
        raise invalid(f"Transfer {transfer_id} has already been fully reversed.", code="transfer_already_reversed")
    reversal = reverse_transfer(ctx, transfer, amount)
    apply_metadata(reversal, ctx.params)
    return reversal


def list_reversals(ctx: Ctx, transfer_id: str) -> StripeObject:
    transfer = retrieve(ctx, transfer_id)
    return paginate(iter(transfer["reversals"]["data"]), ctx.params, f"/v1/transfers/{transfer_id}/reversals")


def retrieve_reversal(ctx: Ctx, transfer_id: str, reversal_id: str) -> StripeObject:
    reversal = ctx.state.store.get(ctx.account, reversal_id, "transfer_reversal")
    if reversal["transfer"] != transfer_id:
        raise not_found("transfer_reversal", reversal_id)
    return reversal


def update_reversal(ctx: Ctx, transfer_id: str, reversal_id: str) -> StripeObject:
    reversal = retrieve_reversal(ctx, transfer_id, reversal_id)
    apply_metadata(reversal, ctx.params)
    ctx.emit("transfer.updated", retrieve(ctx, transfer_id))
    return reversal


ROUTES = [
    ("POST", "/v1/transfers", create),
    ("GET", "/v1/transfers", list_transfers),
    ("GET", "/v1/transfers/{}", retrieve),
    ("POST", "/v1/transfers/{}", update),
    ("POST", "/v1/transfers/{}/reversals", create_reversal),
    ("GET", "/v1/transfers/{}/reversals", list_reversals),
    ("GET", "/v1/transfers/{}/reversals/{}", retrieve_reversal),
    ("POST", "/v1/transfers/{}/reversals/{}", update_reversal),
]
