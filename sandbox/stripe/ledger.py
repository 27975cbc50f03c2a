"""Balances and balance transactions per account, with Stripe's processing fee."""

from __future__ import annotations

import time
from typing import Any

from .config import SandboxConfig
from .ids import new_id
from .store import Store, StripeObject

_PENDING_DAYS = 2


class Ledger:
    """Running balances (available / pending per currency) derived from balance transactions."""

    def __init__(self, store: Store, config: SandboxConfig) -> None:
        self.store = store
        self.config = config
        # account -> currency -> [available, pending]
        self.totals: dict[str, dict[str, list[int]]] = {}
        # account -> txn ids not yet swept into a payout
        self.unpaid: dict[str, list[str]] = {}
        # account -> ids of its pending txns (so that releasing them reads no other)
        self.pending: dict[str, list[str]] = {}
        self.txn_payout: dict[str, str] = {}
        self.payout_txns: dict[str, list[str]] = {}

    def stripe_fee(self, amount: int) -> int:
        return (amount * self.config.fee_percent_bps + 5_000) // 10_000 + self.config.fee_fixed

    def record(
        self,
        account: str,
        amount: int,
        currency: str,
        type: str,
        source: str | None,
        *,
        fee_details: list[dict[str, Any]] | None = None,
        description: str | None = None,
        reporting_category: str | None = None,
        sweepable: bool = True,
    ) -> StripeObject:
        """Add a balance transaction; positive amounts wait `available_immediately` rules, debits don't."""
        now = int(time.time())
        fees = fee_details or []
        fee = sum(f["amount"] for f in fees)
        immediate = self.config.available_immediately or amount < 0
        txn: StripeObject = {
            "id": new_id("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": now if immediate else now + _PENDING_DAYS * 86_400,
            "balance_type": "payments",
            "created": now,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": fees,
            "net": amount - fee,
            "reporting_category": reporting_category or type,
            "source": source,
            "status": "available" if immediate else "pending",
            "type": type,
        }
        self.store.add(account, txn)
        self._apply(account, txn)
        if not immediate:
            self.pending.setdefault(account, []).append(txn["id"])
        if sweepable:
            self.unpaid.setdefault(account, []).append(txn["id"])
        return txn

    def _apply(self, account: str, txn: StripeObject) -> None:
        per_currency = self.totals.setdefault(account, {})
        pair = per_currency.setdefault(txn["currency"], [0, 0])
        pair[0 if txn["status"] == "available" else 1] += txn["net"]

    def release_pending(self, account: str | None = None, force: bool = False) -> int:
        """Make pending transactions available (those due, or all with `force`); returns how many."""
        now = int(time.time())
        released = 0
        owners = list(self.pending) if account is None else [account]
        for owner in owners:
            still: list[str] = []
            for txn_id in self.pending.get(owner, ()):
                txn = self.store.live(txn_id)
                if txn is None or txn["status"] != "pending":
                    continue
                if not (force or txn["available_on"] <= now):
                    still.append(txn_id)
                    continue
                pair = self.totals[owner][txn["currency"]]
                pair[1] -= txn["net"]
                pair[0] += txn["net"]
                txn["status"] = "available"
                txn["available_on"] = min(txn["available_on"], now)
                released += 1
            if still:
                self.pending[owner] = still
            else:
                self.pending.pop(owner, None)
        return released

    def available(self, account: str, currency: str) -> int:
        return self.totals.get(account, {}).get(currency, [0, 0])[0]

    def balance(self, account: str, default_currency: str) -> StripeObject:
        self.release_pending(account)
        per_currency = self.totals.get(account) or {default_currency: [0, 0]}
        return {
            "object": "balance",
            "available": [
                {"amount": a, "currency": c, "source_types": {"card": a}} for c, (a, _) in per_currency.items()
            ],
            "pending": [
                {"amount": p, "currency": c, "source_types": {"card": p}} for c, (_, p) in per_currency.items()
            ],
            "connect_reserved": [{"amount": 0, "currency": c} for c in per_currency],
            "livemode": False,
        }

    def sweep_into_payout(self, account: str, payout_id: str, currency: str) -> list[str]:
        """Attach the account's not-yet-paid-out transactions of `currency` to a payout."""
        pending = self.unpaid.get(account, [])
        swept: list[str] = []
        kept: list[str] = []
        for txn_id in pending:
            txn = self.store.peek(txn_id)
            if txn is not None and txn["currency"] == currency and txn["status"] == "available":
                swept.append(txn_id)
                self.txn_payout[txn_id] = payout_id
            else:
                kept.append(txn_id)
        self.unpaid[account] = kept
        self.payout_txns[payout_id] = swept
        return swept

    def rebuild(self) -> None:
        """Recompute running totals from stored transactions (after loading a state file)."""
        self.totals = {}
        self.pending = {}
        for owner, kind, txn in self.store.snapshot():
            if kind == "balance_transaction":
                self._apply(owner, txn)
                if txn["status"] == "pending":
                    self.pending.setdefault(owner, []).append(txn["id"])

    def dump(self) -> dict[str, Any]:
        return {"unpaid": self.unpaid, "txn_payout": self.txn_payout, "payout_txns": self.payout_txns}

    def load(self, data: dict[str, Any]) -> None:
        self.unpaid = data.get("unpaid", {})
        self.txn_payout = data.get("txn_payout", {})
        self.payout_txns = data.get("payout_txns", {})
        self.rebuild()
