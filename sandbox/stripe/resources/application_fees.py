"""Application fees collected by the platform, and their refunds."""

from __future__ import annotations

from ..context import Ctx
from ..money import refund_application_fee
from ..store import StripeObject, created_filter, paginate
from ..wire import apply_metadata, get_int, not_found


def retrieve(ctx: Ctx, fee_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, fee_id, "application_fee")


def list_fees(ctx: Ctx) -> StripeObject:
    charge = ctx.params.get("charge")
    created = created_filter(ctx.params)

    def keep(fee: StripeObject) -> bool:
        return (not charge or fee["charge"] == charge) and (created is None or created(fee))

    return paginate(
        ctx.state.store.newest_first(ctx.account, "application_fee"), ctx.params, "/v1/application_fees", keep
    )


def create_refund(ctx: Ctx, fee_id: str) -> StripeObject:
    fee = retrieve(ctx, fee_id)
    amount = get_int(ctx.params, "amount", minimum=1) or (fee["amount"] - fee["amount_refunded"])
    refund = refund_application_fee(ctx, fee, amount)
    apply_metadata(refund, ctx.params)
    return refund


def refund_fee(ctx: Ctx, fee_id: str) -> StripeObject:
    """The legacy `POST /v1/application_fees/{id}/refund`: answers the application fee."""
    create_refund(ctx, fee_id)
    return retrieve(ctx, fee_id)


def list_refunds(ctx: Ctx, fee_id: str) -> StripeObject:
    fee = retrieve(ctx, fee_id)
    return paginate(iter(fee["refunds"]["data"]), ctx.params, f"/v1/application_fees/{fee_id}/refunds")


def retrieve_refund(ctx: Ctx, fee_id: str, refund_id: str) -> StripeObject:
    refund = ctx.state.store.get(ctx.account, refund_id, "fee_refund")
    if refund["fee"] != fee_id:
        raise not_found("fee_refund", refund_id)
    return refund


def update_refund(ctx: Ctx, fee_id: str, refund_id: str) -> StripeObject:
    refund = retrieve_refund(ctx, fee_id, refund_id)
    apply_metadata(refund, ctx.params)
    return refund


ROUTES = [
    ("GET", "/v1/application_fees", list_fees),
    ("GET", "/v1/application_fees/{}", retrieve),
    ("POST", "/v1/application_fees/{}/refunds", create_refund),
    ("POST", "/v1/application_fees/{}/refund", refund_fee),
    ("GET", "/v1/application_fees/{}/refunds", list_refunds),
    ("GET", "/v1/application_fees/{}/refunds/{}", retrieve_refund),
    ("POST", "/v1/application_fees/{}/refunds/{}", update_refund),
]
