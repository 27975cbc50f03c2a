"""Balance and balance transactions."""

from __future__ import annotations

from collections.abc import Iterator

from ..context import Ctx
from ..store import StripeObject, created_filter, paginate


def retrieve_balance(ctx: Ctx) -> StripeObject:
    return ctx.state.ledger.balance(ctx.account, ctx.state.default_currency(ctx.account))


def retrieve_transaction(ctx: Ctx, txn_id: str) -> StripeObject:
    return ctx.state.store.get(ctx.account, txn_id, "balance_transaction")


def list_transactions(ctx: Ctx) -> StripeObject:
    params = ctx.params
    ledger = ctx.state.ledger
    payout = params.get("payout")
    kind = params.get("type")
    source = params.get("source")
    currency = params.get("currency")
    created = created_filter(params)

    def keep(txn: StripeObject) -> bool:
        return (
            (not kind or txn["type"] == kind)
            and (not source or txn["source"] == source)
            and (not currency or txn["currency"] == currency)
            and (created is None or created(txn))
        )

    if payout:
        ctx.state.store.get(ctx.account, payout, "payout")
        objects = ctx.state.store.objects
        ids = [*ledger.payout_txns.get(payout, [])]
        items: Iterator[StripeObject] = (objects[i] for i in reversed(ids) if i in objects)
    else:
        items = ctx.state.store.newest_first(ctx.account, "balance_transaction")
    return paginate(items, params, "/v1/balance_transactions", keep)


ROUTES = [
    ("GET", "/v1/balance", retrieve_balance),
    ("GET", "/v1/balance_transactions", list_transactions),
    ("GET", "/v1/balance_transactions/{}", retrieve_transaction),
    ("GET", "/v1/balance/history", list_transactions),
    ("GET", "/v1/balance/history/{}", retrieve_transaction),
]
